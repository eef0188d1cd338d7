"""Where personal data lives: every column that holds some, declared once.

Each column of a kind that can hold a person's data (text, JSON, bytes, arrays, enums) is
either ``Personal`` (whose it is, which category of the policy's §3, and how erasure
deals with it) or ``NotPersonal`` (and why not). ``tests/privacy/test_registry.py``
fails for a column in neither list, so a new column cannot hold personal data the
rights below do not know about.

What reads it: a customer's export (``privacy.export``) writes every ``Personal``
column of that customer's rows, and their erasure (``privacy.erasure``) applies each
column's ``ErasureAction``; so nothing is erased that the export did not show first, and
nothing exported is forgotten by the erasure. Staff users' columns are declared here
for the same use by the account's rights and the retention engine.

API: ``personal(subject=..., table=...)`` lists declarations, ``personal_column``
answers one, ``tables(subject)`` the tables holding a subject's data, and
``unclassified(tables)`` the columns nobody has declared yet.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa


class Subject(enum.StrEnum):
    """Whose data it is (policy §2)."""

    CUSTOMER = "customer"  # a Customer End User, on any channel
    STAFF_USER = "staff_user"  # an organisation's administrator or team member


class Category(enum.StrEnum):
    """The data categories of policy §3."""

    ACCOUNT = "account"  # a) name, e-mail, password (hashed), role
    COMMUNICATION = "communication"  # b) messages, phone numbers, conversation metadata
    USAGE = "usage"  # e) usage and analytics data
    TECHNICAL = "technical"  # f) IP addresses, devices (or keyed hashes of them)


class ErasureAction(enum.StrEnum):
    """What erasing the subject does to the column."""

    CLEAR = "clear"  # set to NULL
    DELETE_ROW = "delete_row"  # the whole row goes (every personal column of it)
    # Replaced by a keyed hash (``privacy.pseudonyms``): the row can still be matched by
    # the value arriving again (a late status webhook), but names no one.
    KEYED_HASH = "keyed_hash"
    # The customer's channel id: replaced by a marker naming no one (``ERASED_PREFIX``).
    MARK_ERASED = "mark_erased"


@dataclass(frozen=True)
class Personal:
    table: str
    column: str
    subject: Subject
    category: Category
    erasure: ErasureAction
    why: str  # what of the person it holds


@dataclass(frozen=True)
class NotPersonal:
    table: str
    column: str
    why: str


def _customer(
    table: str,
    column: str,
    erasure: ErasureAction,
    why: str,
    category: Category = Category.COMMUNICATION,
) -> Personal:
    return Personal(table, column, Subject.CUSTOMER, category, erasure, why)


def _staff(
    table: str, column: str, erasure: ErasureAction, why: str, category: Category = Category.ACCOUNT
) -> Personal:
    return Personal(table, column, Subject.STAFF_USER, category, erasure, why)


_ROW = ErasureAction.DELETE_ROW
_CLEAR = ErasureAction.CLEAR

PERSONAL: tuple[Personal, ...] = (
    # Customers (policy §3b): who they are on the channel and their consent record.
    _customer("customers", "external_id", ErasureAction.MARK_ERASED, "WhatsApp id or visitor id"),
    _customer("customers", "phone_number", _CLEAR, "phone number"),
    _customer("customers", "display_name", _CLEAR, "the name on their profile"),
    _customer("customers", "opt_in_source", _CLEAR, "how they opted in (their words)"),
    _customer("customers", "opt_out_source", _CLEAR, "how they opted out (their words)"),
    _customer("conversations", "handoff_reason", _CLEAR, "why a person was asked for"),
    _customer("csat_surveys", "rating", _ROW, "how they rated a conversation", Category.USAGE),
    _customer(
        "rate_counters",
        "key_hash",
        _ROW,
        "keyed hash of their id (or of an address, which names no customer), counting "
        "their requests for two hours",
        Category.TECHNICAL,
    ),
    _customer("messages", "text", _CLEAR, "what was written, by them or to them"),
    _customer("messages", "payload", _CLEAR, "media, location, buttons they chose"),
    # Meta's wamids are base64 of a structure holding the phone number; web chat's
    # hold the visitor id.
    _customer("messages", "external_id", ErasureAction.KEYED_HASH, "the channel's message id"),
    _customer("messages", "context_external_id", _CLEAR, "the message they quoted"),
    _customer("messages", "error_detail", _CLEAR, "the channel's account of a failure"),
    _customer("messages", "sources", _CLEAR, "what the answer to them drew on"),
    _customer(
        "knowledge_gap_questions",
        "embedding",
        _ROW,
        "the vector of a question of theirs the assistant answered",
        Category.USAGE,
    ),
    _customer("message_attachments", "media_id", _ROW, "the channel's id of their file"),
    _customer("message_attachments", "filename", _ROW, "their file's name"),
    _customer("message_attachments", "sha256", _ROW, "their file's fingerprint"),
    _customer("message_attachments", "data", _ROW, "their file"),
    _customer("message_attachments", "error", _ROW, "why their file was not kept"),
    _customer("whatsapp_webhook_events", "value", _ROW, "the raw delivery that carried them"),
    _customer("whatsapp_webhook_events", "problems", _ROW, "what could not be read in it"),
    _customer(
        "shopify_webhook_deliveries",
        "payload",
        _ROW,
        "a Shopify compliance request naming them (e-mail, phone)",
    ),
    # Staff users (policy §3a).
    _staff("users", "email", _ROW, "e-mail address"),
    _staff("users", "name", _ROW, "name"),
    _staff("users", "password_hash", _ROW, "password (hashed)"),
    _staff("invitations", "email", _ROW, "the invited person's e-mail address"),
    _staff("email_changes", "new_email", _ROW, "an e-mail address waiting for confirmation"),
    _staff("audit_actor_labels", "label", _ROW, "who acted (an e-mail address)"),
    _staff("audit_events", "actor_label", _CLEAR, "who acted (an e-mail address)"),
    _staff("outbound_emails", "to_address", _ROW, "recipient"),
    _staff("outbound_emails", "subject", _ROW, "an e-mail to them"),
    _staff("outbound_emails", "body_text", _ROW, "an e-mail to them"),
    _staff(
        "login_attempts",
        "key_hash",
        _ROW,
        "keyed hash of an e-mail or an address",
        Category.TECHNICAL,
    ),
)

_ENUM = "a fixed value of an enumeration"
_CREDENTIAL = "a hash of a random secret: identifies a credential, not a person"
_CONFIG = "the organisation's configuration, written by its team for every customer"
_KNOWLEDGE = "the organisation's knowledge base (§3c): business content, erased with it"
_CATALOGUE = "the shop's product catalogue (§8b): the shop's data, not a person's"

NOT_PERSONAL: tuple[NotPersonal, ...] = (
    NotPersonal("rate_counters", "purpose", "the name of a rate limit"),
    NotPersonal("audit_events", "actor_type", _ENUM),
    NotPersonal("audit_events", "actor_id", "an id: who it is lives in users, erasable there"),
    NotPersonal("audit_events", "action", "the name of what was done"),
    NotPersonal("audit_events", "target_type", "the kind of thing acted on"),
    NotPersonal("audit_events", "target_id", "an id of the thing acted on"),
    NotPersonal(
        "audit_events", "details", "counts, field names and roles; never content (keyed hashes)"
    ),
    NotPersonal("audit_events", "prev_hash", "the hash chain"),
    NotPersonal("audit_events", "hash", "the hash chain"),
    NotPersonal("audit_events", "seal", "the hash chain"),
    NotPersonal("audit_actor_labels", "actor_type", _ENUM),
    NotPersonal("audit_actor_labels", "actor_id", "an id: the label beside it is the person"),
    NotPersonal("email_changes", "token_hash", _CREDENTIAL),
    NotPersonal("organisations", "name", "a business's name"),
    NotPersonal("organisations", "status", _ENUM),
    NotPersonal("outbound_emails", "status", _ENUM),
    NotPersonal("outbound_emails", "error", "the mail server's answer"),
    NotPersonal("security_signals", "kind", _ENUM),
    NotPersonal("security_alerts", "kind", _ENUM),
    NotPersonal("policy_versions", "url", "where the platform publishes its policy"),
    NotPersonal("policy_versions", "summary", "the platform's notice of what changes"),
    NotPersonal("api_keys", "name", "a label the team gives a key"),
    NotPersonal("api_keys", "prefix", "the first characters of a random key"),
    NotPersonal("api_keys", "key_hash", _CREDENTIAL),
    NotPersonal("api_keys", "role", _ENUM),
    NotPersonal("invitations", "role", _ENUM),
    NotPersonal("invitations", "token_hash", _CREDENTIAL),
    NotPersonal("memberships", "role", _ENUM),
    NotPersonal("password_reset_tokens", "token_hash", _CREDENTIAL),
    NotPersonal("user_sessions", "token_hash", _CREDENTIAL),
    *(
        NotPersonal("assistants", column, _CONFIG)
        for column in (
            "name",
            "persona",
            "instructions",
            "tone",
            "greeting",
            "fallback_message",
            "ai_disclosure",
            "csat_question",
            "llm_provider",
            "llm_model",
            "llm_base_url",
            "llm_api_key",
            "business_hours",
            "widget_key",
            "widget",
            "languages",
            "knowledge_collections",
            "handoff_keywords",
            "allowed_origins",
        )
    ),
    NotPersonal("customers", "channel", _ENUM),
    # Data-subject requests (privacy.requests): fixed values; the subject is an id.
    *(
        NotPersonal("privacy_requests", column, _ENUM)
        for column in (
            "kind",
            "channel",
            "verification",
            "verification_method",
            "status",
            "refusal_reason",
        )
    ),
    NotPersonal("conversations", "channel", _ENUM),
    NotPersonal("conversations", "state", _ENUM),
    # A conversation's figures (analytics.facts): counts, moments, outcomes; no text.
    NotPersonal("analytics_conversations", "channel", _ENUM),
    NotPersonal("analytics_conversations", "state", _ENUM),
    NotPersonal("analytics_conversations", "handoff_reason", "a fixed reason code, or 'other'"),
    NotPersonal(
        "analytics_conversations",
        "model_usage",
        "answers and tokens per model provider and model name",
    ),
    NotPersonal("analytics_conversations", "cited_sources", "citations per knowledge item id"),
    NotPersonal("analytics_daily_customers", "channel", _ENUM),
    NotPersonal("messages", "direction", _ENUM),
    NotPersonal("messages", "sender", _ENUM),
    NotPersonal("messages", "status", _ENUM),
    NotPersonal("messages", "type", "the kind of message (text, image, ...)"),
    NotPersonal("messages", "error_title", "the channel's fixed phrase for an error code"),
    NotPersonal("messages", "llm_provider", "which model provider answered"),
    NotPersonal("messages", "llm_model", "which model answered"),
    NotPersonal("message_attachments", "status", _ENUM),
    NotPersonal("message_attachments", "mime_type", "a file type"),
    NotPersonal("whatsapp_webhook_events", "field", "the webhook field's name"),
    NotPersonal("whatsapp_numbers", "phone_number_id", "Meta's id of the business's number"),
    NotPersonal("whatsapp_numbers", "waba_id", "Meta's id of the business account"),
    NotPersonal("whatsapp_numbers", "display_phone_number", "the business's own number"),
    NotPersonal("whatsapp_numbers", "access_token", "the business's credential, encrypted"),
    NotPersonal("whatsapp_numbers", "app_secret", "the business's credential, encrypted"),
    NotPersonal("whatsapp_numbers", "verify_token_sha256", _CREDENTIAL),
    NotPersonal("whatsapp_numbers", "opt_out_keywords", _CONFIG),
    NotPersonal("whatsapp_numbers", "opt_in_keywords", _CONFIG),
    NotPersonal("whatsapp_numbers", "last_error", "Meta's error title, redacted of the text"),
    NotPersonal("shopify_shops", "shop_domain", "the shop's myshopify.com host, a business"),
    NotPersonal("shopify_webhook_deliveries", "topic", "the webhook topic's name"),
    NotPersonal("shopify_webhook_deliveries", "webhook_id", "Shopify's id of the delivery"),
    NotPersonal("shopify_webhook_deliveries", "api_version", "an API version"),
    NotPersonal("shopify_webhook_deliveries", "status", _ENUM),
    NotPersonal(
        "shopify_webhook_deliveries", "error", "the kind of failure, never a payload's content"
    ),
    NotPersonal("shopify_shops", "status", _ENUM),
    NotPersonal("shopify_shops", "scopes", _CONFIG),
    NotPersonal("shopify_shops", "access_token", "the shop's credential, encrypted"),
    NotPersonal("shopify_shops", "refresh_token", "the shop's credential, encrypted"),
    NotPersonal("shopify_shops", "plan_name", "the billing plan's name (§8b)"),
    NotPersonal("shopify_shops", "subscription_status", "Shopify's subscription status (§8b)"),
    NotPersonal("shopify_shops", "subscription_id", "Shopify's id of the app subscription"),
    NotPersonal("shopify_shops", "embed_state", "whether the storefront chat embed is on"),
    # The sync from a shop (shopify.sync_models): the shop's business data and its ids.
    NotPersonal("shopify_sync_runs", "kind", _ENUM),
    NotPersonal("shopify_sync_runs", "status", _ENUM),
    NotPersonal("shopify_sync_runs", "bulk_operation_id", "Shopify's id of a bulk operation"),
    NotPersonal("shopify_sync_runs", "currency", "the shop's currency code"),
    NotPersonal("shopify_sync_runs", "error", "why a sync failed, naming no one"),
    NotPersonal("shopify_sync_runs", "errors", "products refused: line, product id, reason"),
    NotPersonal("shopify_source_versions", "kind", _ENUM),
    NotPersonal("shopify_source_versions", "external_id", "Shopify's id of a product"),
    NotPersonal("kb_collections", "name", _KNOWLEDGE),
    NotPersonal("kb_lexicon", "lexeme", _KNOWLEDGE),
    NotPersonal("kb_items", "kind", _ENUM),
    NotPersonal("kb_items", "status", _ENUM),
    *(
        NotPersonal("kb_items", column, _KNOWLEDGE)
        for column in (
            "external_id",
            "title",
            "body",
            "question",
            "alternatives",
            "content_type",
            "metadata",
        )
    ),
    NotPersonal("kb_items", "error", "why a document could not be read"),
    NotPersonal("kb_chunks", "kind", _ENUM),
    NotPersonal("kb_chunks", "text", _KNOWLEDGE),
    NotPersonal("kb_chunks", "embedding_model", "the name of a model"),
    NotPersonal("kb_files", "filename", _KNOWLEDGE),
    NotPersonal("kb_files", "declared_type", "a file type"),
    NotPersonal("kb_files", "sha256", _KNOWLEDGE),
    NotPersonal("kb_files", "data", _KNOWLEDGE),
    # Whole-organisation exports (privacy.organisation_export): the file's facts only.
    NotPersonal("organisation_exports", "status", _ENUM),
    NotPersonal("organisation_exports", "file_name", "the export's id, as a file name"),
    NotPersonal("organisation_exports", "sha256", "a hash of the whole export file"),
    NotPersonal("organisation_exports", "counts", "rows written per table"),
    NotPersonal("organisation_exports", "link_token_hash", _CREDENTIAL),
    NotPersonal("organisation_exports", "error", "a fixed sentence naming an error's type"),
    # Analytics aggregates (analytics): counts per hour, assistant and channel.
    *(
        NotPersonal(table, "channel", _ENUM)
        for table in (
            "analytics_hourly",
            "analytics_hourly_model_usage",
            "analytics_hourly_sources",
            "analytics_hourly_reasons",
            "analytics_daily_model_usage",
            "analytics_daily_sources",
            "analytics_daily_reasons",
        )
    ),
    NotPersonal("analytics_hourly_model_usage", "item", "a model provider's and model's names"),
    NotPersonal("analytics_hourly_model_usage", "provider", "the name of a model provider"),
    NotPersonal("analytics_hourly_model_usage", "model", "the name of a model"),
    NotPersonal("analytics_hourly_sources", "item", "the id of a knowledge source"),
    NotPersonal("analytics_hourly_reasons", "item", "a fixed reason code, or 'other' for any text"),
    NotPersonal("analytics_hourly_embeddings", "provider", "the name of an embedding provider"),
    NotPersonal("analytics_hourly_embeddings", "model", "the name of a model"),
    NotPersonal("analytics_hourly_embeddings", "purpose", "a fixed code of what the call was for"),
    # The same breakdowns per UTC day (analytics.days).
    NotPersonal("analytics_daily_model_usage", "item", "a model provider's and model's names"),
    NotPersonal("analytics_daily_model_usage", "provider", "the name of a model provider"),
    NotPersonal("analytics_daily_model_usage", "model", "the name of a model"),
    NotPersonal("analytics_daily_sources", "item", "the id of a knowledge source"),
    NotPersonal("analytics_daily_reasons", "item", "a fixed reason code, or 'other' for any text"),
    NotPersonal("analytics_daily_embeddings", "provider", "the name of an embedding provider"),
    NotPersonal("analytics_daily_embeddings", "model", "the name of a model"),
    NotPersonal("analytics_daily_embeddings", "purpose", "a fixed code of what the call was for"),
    # The API usage log (analytics.api_usage): which key called which route, no path or body.
    NotPersonal("api_usage_log", "method", "an HTTP method"),
    NotPersonal("api_usage_log", "route", "a route's template, with no id or query"),
    # The questions (analytics.gaps): the question's text stays in messages.
    NotPersonal("knowledge_gap_questions", "cause", "'grounded', 'fallback' or 'handoff'"),
    NotPersonal("knowledge_gap_questions", "channel", _ENUM),
    NotPersonal("knowledge_gap_questions", "embedding_model", "the name of a model"),
    NotPersonal("knowledge_gap_groups", "embedding_model", "the name of a model"),
    # Counts of a group's questions per day and month (analytics.gap_models.GapDay, GapMonth).
    NotPersonal("knowledge_gap_days", "channel", _ENUM),
    NotPersonal("knowledge_gap_days", "cause", "'grounded', 'fallback' or 'handoff'"),
    NotPersonal("knowledge_gap_months", "channel", _ENUM),
    NotPersonal("knowledge_gap_months", "cause", "'grounded', 'fallback' or 'handoff'"),
    # The product catalogue (catalog): what a shop sells.
    *(
        NotPersonal("catalog_products", column, _CATALOGUE)
        for column in (
            "title",
            "body_html",
            "vendor",
            "product_type",
            "tags",
            "handle",
            "url",
            "external_id",
            "currency",
        )
    ),
    NotPersonal("catalog_products", "status", _ENUM),
    NotPersonal("catalog_product_options", "name", _CATALOGUE),
    NotPersonal("catalog_product_options", "values", _CATALOGUE),
    *(
        NotPersonal("catalog_variants", column, _CATALOGUE)
        for column in ("title", "option1", "option2", "option3", "currency", "sku")
    ),
    NotPersonal("catalog_variants", "inventory_policy", _ENUM),
    NotPersonal("catalog_images", "src", _CATALOGUE),
    NotPersonal("catalog_images", "alt", _CATALOGUE),
    NotPersonal("catalog_collections", "title", _CATALOGUE),
    NotPersonal("catalog_collections", "handle", _CATALOGUE),
    NotPersonal("catalog_collections", "external_id", _CATALOGUE),
    NotPersonal("catalog_product_search", "document", _CATALOGUE),
    NotPersonal("catalog_product_search", "option_values", _CATALOGUE),
    NotPersonal("catalog_product_search", "currency", _CATALOGUE),
    NotPersonal("catalog_product_search", "variants", _CATALOGUE),
    NotPersonal("catalog_product_search", "document_hash", "a hash of the catalogue's text"),
    NotPersonal("catalog_product_search", "embedding_model", "the name of a model"),
)


def personal(*, subject: Subject | None = None, table: str | None = None) -> list[Personal]:
    """The declared personal columns, of one subject and/or one table, in order."""
    return [
        p
        for p in PERSONAL
        if (subject is None or p.subject == subject) and (table is None or p.table == table)
    ]


def personal_column(table: str, column: str) -> Personal | None:
    """The declaration of ``table.column`` if it holds personal data."""
    for declared in PERSONAL:
        if (declared.table, declared.column) == (table, column):
            return declared
    return None


def tables(subject: Subject) -> list[str]:
    """The tables holding some of ``subject``'s data, in declaration order."""
    return list(dict.fromkeys(p.table for p in PERSONAL if p.subject == subject))


def may_hold_personal_data(column: sa.Column[object]) -> bool:
    """Text, JSON, bytes, arrays and enumerations: the column types a person's data can be
    written into (numbers, times, booleans and ids say nothing of someone alone)."""
    kinds = (sa.String, sa.Text, sa.JSON, sa.LargeBinary, sa.ARRAY, sa.Enum)
    column_type = column.type
    if isinstance(column_type, sa.TypeDecorator):
        column_type = column_type.impl_instance
    return isinstance(column_type, kinds)


def unclassified(tables_: Iterable[sa.Table]) -> list[str]:
    """``table.column`` of every column that may hold personal data and that neither list
    declares: the registry's gaps."""
    declared = {(d.table, d.column) for d in PERSONAL} | {(d.table, d.column) for d in NOT_PERSONAL}
    return [
        f"{table.name}.{column.name}"
        for table in tables_
        for column in table.columns
        if may_hold_personal_data(column) and (table.name, column.name) not in declared
    ]


__all__ = [
    "NOT_PERSONAL",
    "PERSONAL",
    "Category",
    "ErasureAction",
    "NotPersonal",
    "Personal",
    "Subject",
    "may_hold_personal_data",
    "personal",
    "personal_column",
    "tables",
    "unclassified",
]
