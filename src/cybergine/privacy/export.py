"""A customer's copy of everything held about them (policy §14: access and portability).

Which columns are written comes from the registry: every ``Personal`` column of the
customer's rows (``privacy.holdings``), beside the few plain facts that give them
context (ids, times, states). Bytes (attachments' files) are written as base64, JSON as
it is stored; the raw webhook deliveries that mention them are included. Every export
is audited, since the copy leaves the platform.
"""

from __future__ import annotations

import base64
import enum
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from cybergine.accounts.principal import Principal
from cybergine.conversations.models import Customer
from cybergine.db.base import Base
from cybergine.db.tenancy import TenantScope
from cybergine.privacy import audit, registry
from cybergine.privacy.holdings import Holdings, locate

EXPORT_FORMAT = "cybergine.customer-export/2"

# The facts written beside the personal columns: enough to read the rest by.
CONTEXT: dict[str, tuple[str, ...]] = {
    "customers": ("id", "channel", "created_at", "opted_in_at", "opted_out_at"),
    "conversations": (
        "id",
        "channel",
        "state",
        "created_at",
        "closed_at",
        "handoff_at",
        "human_review_requested",
    ),
    "messages": (
        "id",
        "conversation_id",
        "direction",
        "sender",
        "type",
        "status",
        "created_at",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        "error_code",
        "error_title",
        "grounded",
        "llm_provider",
        "llm_model",
    ),
    # Their rating of a conversation, asked when it closed.
    "csat_surveys": ("id", "conversation_id", "created_at", "rated_at"),
    "message_attachments": ("id", "message_id", "status", "mime_type", "size_bytes", "created_at"),
    "whatsapp_webhook_events": ("id", "created_at", "field"),
    "shopify_webhook_deliveries": ("id", "created_at", "topic"),
    # A question of theirs the assistant could not answer (its text is the message's).
    "knowledge_gap_questions": ("id", "message_id", "cause", "created_at", "embedding_model"),
    # How many requests they made lately, counted for the widget's rate limits.
    "rate_counters": ("id", "purpose", "window_start", "hits"),
}


async def export_customer(
    scope: TenantScope, caller: Principal | None, customer_id: uuid.UUID
) -> dict[str, Any]:
    """Everything held about one customer, as JSON-ready data; audited. ``caller`` None:
    a platform job (Shopify's customers/data_request)."""
    customer = await scope.get(Customer, customer_id, what="customer")
    holdings = await locate(scope, customer)
    rows = {table: await _rows(scope, table, holdings) for table in CONTEXT}
    attachments = {a["message_id"]: a for a in rows["message_attachments"]}
    messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in rows["messages"]:
        message["attachment"] = attachments.get(message["id"])
        messages[message["conversation_id"]].append(message)
    conversations = [
        {**conversation, "messages": messages[conversation["id"]]}
        for conversation in rows["conversations"]
    ]
    await audit.record(
        scope.session,
        action="customer.exported",
        actor=caller.actor if caller is not None else audit.Actor.system(),
        organisation_id=scope.organisation_id,
        target_type="customer",
        target_id=str(customer.id),
        details={
            "conversations": len(rows["conversations"]),
            "messages": len(rows["messages"]),
            "attachments": len(rows["message_attachments"]),
            "webhook_events": len(rows["whatsapp_webhook_events"]),
        },
    )
    return {
        "format": EXPORT_FORMAT,
        "exported_at": datetime.now(UTC).isoformat(),
        "customer": rows["customers"][0],
        "conversations": conversations,
        "satisfaction_ratings": rows["csat_surveys"],
        "webhook_events": rows["whatsapp_webhook_events"],
        "shopify_requests": rows["shopify_webhook_deliveries"],
        "knowledge_gap_questions": rows["knowledge_gap_questions"],
        "rate_limit_counters": rows["rate_counters"],
    }


def exported_columns(table: str) -> tuple[str, ...]:
    """The columns of ``table`` an export writes: its context and every personal column."""
    declared = registry.personal(subject=registry.Subject.CUSTOMER, table=table)
    return (*CONTEXT[table], *(p.column for p in declared))


async def _rows(scope: TenantScope, table_name: str, holdings: Holdings) -> list[dict[str, Any]]:
    ids = holdings.of(table_name)
    if not ids:
        return []
    table = Base.metadata.tables[table_name]
    columns = [table.c[name] for name in exported_columns(table_name)]
    result = await scope.session.execute(
        sa.select(*columns)
        .where(table.c.organisation_id == scope.organisation_id, table.c.id.in_(ids))
        .order_by(table.c.id)
    )
    return [_json_row(row._mapping.items()) for row in result]


def _json_row(items: Sequence[tuple[str, Any]] | Any) -> dict[str, Any]:
    return {name: _json(value) for name, value in items}


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, np.ndarray):  # a vector (pgvector)
        return [float(x) for x in value]
    return value


__all__ = ["CONTEXT", "EXPORT_FORMAT", "export_customer", "exported_columns"]
