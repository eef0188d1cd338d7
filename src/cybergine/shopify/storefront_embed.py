"""The storefront's chat: the assistant that answers on the shop's storefront, and the
app-data metafields that tell the theme app extension's embed which widget to load.

The storefront assistant of a shop is its organisation's oldest active assistant that
lists the shop's storefront origin (``https://{shop}``) among the widget's allowed
origins. The install makes one when there is none (``ensure_storefront_assistant``),
allowing the shop's myshopify.com origin and its primary domain, so a new shop's
storefront is answered at once from its synced catalogue and content.

The embed (``extensions/cybergine-chat``) reads ``app.metafields.cybergine.widget_key``
and ``…platform_origin``: the job ``shopify:set_app_metafields`` writes them on the app's
installation (``currentAppInstallation``) with ``metafieldsSet``, after an install, a
reinstall, and whenever the organisation's assistants change (``request_app_metafields``
is deferred by name). It is retried on failure; a
shop with no storefront assistant gets no metafields, and its embed renders nothing.
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy import any_, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import Role, User
from cybergine.accounts.principal import Principal
from cybergine.assistants.changes import AssistantChanges
from cybergine.assistants.models import Assistant
from cybergine.assistants.service import create_assistant, update_assistant
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.errors import InvalidInput
from cybergine.job_names import JobName
from cybergine.origins import origin_of
from cybergine.queue import defer
from cybergine.settings import Settings
from cybergine.shopify import tokens
from cybergine.shopify.admin_api import AccessRevoked, AdminClient
from cybergine.shopify.models import ShopifyShop
from cybergine.shopify.shop_domains import shop_origin
from cybergine.shopify.sync_status import shop_of
from cybergine.shopify.theme_embed import (
    METAFIELD_NAMESPACE,
    PLATFORM_ORIGIN_METAFIELD,
    WIDGET_KEY_METAFIELD,
)

log = structlog.get_logger(__name__)

STOREFRONT_ASSISTANT_NAME = "Storefront assistant"

INSTALLATION_QUERY = """
query AppInstallation {
  currentAppInstallation { id }
}
"""
METAFIELDS_SET = """
mutation SetAppMetafields($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) {
    metafields { key value }
    userErrors { field message code }
  }
}
"""


def storefront_origins(domain: str, primary_domain_url: str | None) -> list[str]:
    """Where the shop's storefront is served: its myshopify.com origin, and its primary
    domain's when Shopify names another one."""
    origins = [shop_origin(domain)]
    primary = origin_of(primary_domain_url)
    if primary is not None and primary not in origins:
        origins.append(primary)
    return origins


async def storefront_assistant(session: AsyncSession, shop: ShopifyShop) -> Assistant | None:
    return await session.scalar(
        select(Assistant)
        .where(
            Assistant.organisation_id == shop.organisation_id,
            Assistant.active,
            literal(shop_origin(shop.shop_domain)) == any_(Assistant.allowed_origins),
        )
        .order_by(Assistant.created_at, Assistant.id)
        .limit(1)
    )


async def ensure_storefront_assistant(
    session: AsyncSession, shop: ShopifyShop, owner: User, origins: list[str]
) -> Assistant:
    """The shop's storefront assistant, made (or the one of that name given the shop's
    origins again) on the owner's behalf when the organisation has none."""
    found = await storefront_assistant(session, shop)
    if found is not None:
        return found
    scope = TenantScope(session, shop.organisation_id)
    caller = Principal(shop.organisation_id, Role.OWNER, user_id=owner.id, email=owner.email)
    named = await session.scalar(
        scope.select(Assistant).where(Assistant.name == STOREFRONT_ASSISTANT_NAME)
    )
    if named is not None:
        kept = [o for o in named.allowed_origins if o not in origins]
        return await update_assistant(
            scope,
            caller,
            named.id,
            AssistantChanges(
                active=True,
                allowed_origins=[*origins, *kept],
                fields_set={"active", "allowed_origins"},
            ),
        )
    return await create_assistant(
        scope,
        caller,
        AssistantChanges(
            name=STOREFRONT_ASSISTANT_NAME,
            allowed_origins=origins,
            fields_set={"name", "allowed_origins"},
        ),
    )


async def open_storefront(
    session: AsyncSession, shop: ShopifyShop, owner: User | None, primary_domain_url: str | None
) -> None:
    """What an install or reinstall does for the storefront: a storefront assistant made
    on the owner's behalf when there is none (and an owner to act for), and the app
    metafields written by a job once ``session`` commits."""
    if owner is not None:
        await ensure_storefront_assistant(
            session, shop, owner, storefront_origins(shop.shop_domain, primary_domain_url)
        )
    await request_app_metafields(session, shop.organisation_id)


async def request_app_metafields(session: AsyncSession, organisation_id: uuid.UUID) -> None:
    """Writes the app metafields of the organisation's shop by a job, once ``session``
    commits. The assistants' service defers the same job by its name (``JobName``) when
    an assistant's widget origins or activity change; the job reads the assistants as
    they are when it runs, so one more is harmless, and an organisation without a shop
    makes it a no-op."""
    await defer(session, JobName.SET_SHOPIFY_APP_METAFIELDS, organisation_id=str(organisation_id))


async def write_app_metafields(
    database: Database, settings: Settings, organisation_id: uuid.UUID
) -> str | None:
    """Sets ``cybergine.widget_key`` and ``cybergine.platform_origin`` on the app
    installation of the organisation's shop; the widget key written, or None when there
    is nothing to write (no installed shop, or no storefront assistant). Admin API
    failures raise (the job retries)."""
    async with database.autocommit() as session:
        shop = await shop_of(session, organisation_id)
        if shop is None or not shop.access_token:
            return None
        assistant = await storefront_assistant(session, shop)
        if assistant is None:
            log.info("shopify shop has no storefront assistant", shop_id=str(shop.id))
            return None
        widget_key, domain, shop_id = assistant.widget_key, shop.shop_domain, shop.id
    platform_origin = origin_of(settings.public_url)
    if platform_origin is None:
        raise InvalidInput("CYBERGINE_PUBLIC_URL is not an http(s) URL.")
    token = await tokens.access_token(database, shop_id, settings)
    try:
        await _set(settings, domain, token, widget_key, platform_origin)
    except AccessRevoked:
        # A token Shopify ended before its time: refreshed once, then tried again.
        token = await tokens.access_token(database, shop_id, settings, rejected=token)
        await _set(settings, domain, token, widget_key, platform_origin)
    log.info("shopify app metafields set", shop_id=str(shop_id))
    return widget_key


async def _set(
    settings: Settings, domain: str, token: str, widget_key: str, platform_origin: str
) -> None:
    client = AdminClient(settings, domain, token)
    try:
        installation = (await client.query(INSTALLATION_QUERY))["currentAppInstallation"]["id"]
        values = (
            (WIDGET_KEY_METAFIELD, "single_line_text_field", widget_key),
            (PLATFORM_ORIGIN_METAFIELD, "url", platform_origin),
        )
        await client.mutate(
            METAFIELDS_SET,
            "metafieldsSet",
            {
                "metafields": [
                    {
                        "ownerId": installation,
                        "namespace": METAFIELD_NAMESPACE,
                        "key": key,
                        "type": kind,
                        "value": value,
                    }
                    for key, kind, value in values
                ]
            },
        )
    finally:
        await client.aclose()
