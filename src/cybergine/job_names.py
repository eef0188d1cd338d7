"""The name of every job a service defers, defined once.

A service defers a job by its name (``queue.defer(session, JobName.REPLY, ...)``) and the
task module registers its task under the same name, so no service imports a task module:
task modules import the services they run, and ``cybergine.jobs`` (the composition root)
imports every task module. A name is ``namespace:task``, the namespace being the one
``cybergine.jobs`` gives the domain's blueprint; ``tests/jobs`` checks that every name
here is a task of the App.

The values are stored in ``procrastinate_jobs`` and some are written by SQL as well (the
ingest function of migration 0008, ``conversations.replies``): a value changes only with
a migration that renames the jobs already queued.
"""

from __future__ import annotations

import enum


class JobName(enum.StrEnum):
    REPLY = "conversations:reply"
    SEND_WHATSAPP_MESSAGE = "whatsapp:send_message"
    FETCH_WHATSAPP_MEDIA = "whatsapp:fetch_media"
    INDEX_KNOWLEDGE_ITEM = "knowledge:index_item"
    DELIVER_EMAIL = "mail:deliver_email"
    ERASE_ORGANISATION = "accounts:erase_organisation"
    VACUUM_ERASED = "privacy:vacuum_erased"
    BUILD_ORGANISATION_EXPORT = "organisation_export:build"
    SHOPIFY_SYNC = "shopify:sync"
    PROCESS_SHOPIFY_WEBHOOK = "shopify:process_webhook"
    SEND_SHOPIFY_DATA_REPORT = "shopify:send_data_report"
    SET_SHOPIFY_APP_METAFIELDS = "shopify:set_app_metafields"
    EMBED_PRODUCTS = "catalog:embed_products"
    REFRESH_ANALYTICS = "analytics:refresh"
    COLLECT_KNOWLEDGE_GAPS = "analytics:collect_knowledge_gaps"

    @property
    def namespace(self) -> str:
        """The blueprint's namespace in the App (``conversations``)."""
        return self.value.partition(":")[0]

    @property
    def task(self) -> str:
        """The name the task module registers on its blueprint (``reply``)."""
        return self.value.partition(":")[2]
