"""Customers' rights over their data (policy §14; Shopify's customers/data_request and
customers/redact, §8): a complete, machine-readable copy of what is held about one
customer, and its erasure.

Erasure follows the policy's words: conversation records are anonymised (they stay, for
the organisation's statistics, with no one behind them) and message content is deleted
for good: texts, structured content, media files, the raw webhook events that carried
them, and the model's notes. The customer row keeps no identifier of the person, so the
same person writing again starts afresh as a new customer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, or_, select, update

from cybergine.accounts.principal import Principal
from cybergine.channels.whatsapp.models import WebhookEvent
from cybergine.conversations.models import (
    Attachment,
    Channel,
    Conversation,
    Customer,
    Message,
)
from cybergine.db.tenancy import TenantScope
from cybergine.errors import InvalidInput
from cybergine.privacy import audit

EXPORT_FORMAT = "cybergine.customer-export/1"
ERASED_PREFIX = "erased:"


async def find_customers(
    scope: TenantScope,
    *,
    phone_number: str | None = None,
    external_id: str | None = None,
    limit: int = 50,
) -> list[Customer]:
    """The customers a request names, by phone number (any formatting) or channel id;
    without either, the newest ones."""
    statement = scope.select(Customer)
    if phone_number:
        digits = "".join(ch for ch in phone_number if ch.isdigit())
        if len(digits) < 6:
            raise InvalidInput("That is not a phone number.", field="phone_number")
        statement = statement.where(
            or_(Customer.phone_number == f"+{digits}", Customer.external_id == digits)
        )
    if external_id:
        statement = statement.where(Customer.external_id == external_id)
    statement = statement.order_by(Customer.id.desc()).limit(limit)
    return list((await scope.session.execute(statement)).scalars())


async def export_customer(scope: TenantScope, customer_id: uuid.UUID) -> dict[str, Any]:
    customer = await scope.get(Customer, customer_id, what="customer")
    conversations = list(
        (
            await scope.session.execute(
                scope.select(Conversation)
                .where(Conversation.customer_id == customer.id)
                .order_by(Conversation.id)
            )
        ).scalars()
    )
    # All their messages and attachments in two queries, then grouped per conversation.
    messages = list(
        (
            await scope.session.execute(
                scope.select(Message)
                .where(Message.conversation_id.in_([c.id for c in conversations]))
                .order_by(Message.id)
            )
        ).scalars()
    )
    attachments = {
        a.message_id: a
        for a in (
            await scope.session.execute(
                select(
                    Attachment.message_id,
                    Attachment.id,
                    Attachment.mime_type,
                    Attachment.filename,
                    Attachment.size_bytes,
                    Attachment.sha256,
                ).where(
                    Attachment.organisation_id == scope.organisation_id,
                    Attachment.message_id.in_([m.id for m in messages]),
                )
            )
        ).all()
    }
    by_conversation: dict[uuid.UUID, list[dict[str, Any]]] = {c.id: [] for c in conversations}
    for message in messages:
        by_conversation[message.conversation_id].append(
            _message(message, attachments.get(message.id))
        )
    exported = [
        {
            "id": str(conversation.id),
            "channel": conversation.channel.value,
            "state": conversation.state.value,
            "started_at": _iso(conversation.created_at),
            "closed_at": _iso(conversation.closed_at),
            "human_review_requested": conversation.human_review_requested,
            "messages": by_conversation[conversation.id],
        }
        for conversation in conversations
    ]
    return {
        "format": EXPORT_FORMAT,
        "exported_at": datetime.now(UTC).isoformat(),
        "customer": {
            "id": str(customer.id),
            "channel": customer.channel.value,
            "external_id": customer.external_id,
            "phone_number": customer.phone_number,
            "display_name": customer.display_name,
            "first_seen_at": _iso(customer.created_at),
            "opted_in_at": _iso(customer.opted_in_at),
            "opt_in_source": customer.opt_in_source,
            "opted_out_at": _iso(customer.opted_out_at),
        },
        "conversations": exported,
    }


def _message(message: Message, attachment: Any) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "direction": message.direction.value,
        "sender": message.sender.value,
        "type": message.type,
        "text": message.text,
        "content": message.payload,
        "status": message.status.value,
        "created_at": _iso(message.created_at),
        "sent_at": _iso(message.sent_at),
        "delivered_at": _iso(message.delivered_at),
        "read_at": _iso(message.read_at),
        "generated_by": message.llm_provider,
        "sources": message.sources,
        "attachment": None
        if attachment is None
        else {
            "id": str(attachment.id),
            "mime_type": attachment.mime_type,
            "filename": attachment.filename,
            "size_bytes": attachment.size_bytes,
            "sha256": attachment.sha256,
            "download": f"/api/v1/conversations/{message.conversation_id}/messages/"
            f"{message.id}/attachment",
        },
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class Erasure:
    customer_id: uuid.UUID
    conversations: int
    messages: int
    attachments: int
    webhook_events: int


async def erase_customer(
    scope: TenantScope, caller: Principal | None, customer_id: uuid.UUID
) -> Erasure:
    """Erase one customer's personal data; ``caller`` None: a platform job (a webhook).
    Idempotent: erasing an erased customer finds nothing more to erase."""
    session = scope.session
    customer = await scope.get(Customer, customer_id, what="customer", for_update=True)
    external_id = customer.external_id
    conversation_ids = list(
        (
            await session.execute(
                select(Conversation.id).where(
                    Conversation.organisation_id == scope.organisation_id,
                    Conversation.customer_id == customer.id,
                )
            )
        ).scalars()
    )
    attachments = await session.execute(
        delete(Attachment).where(
            Attachment.organisation_id == scope.organisation_id,
            Attachment.message_id.in_(
                select(Message.id).where(Message.conversation_id.in_(conversation_ids))
            ),
        )
    )
    messages = await session.execute(
        update(Message)
        .where(
            Message.organisation_id == scope.organisation_id,
            Message.conversation_id.in_(conversation_ids),
        )
        .values(
            text=None,
            payload=None,
            sources=None,
            error_detail=None,
            context_external_id=None,
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Conversation)
        .where(Conversation.id.in_(conversation_ids))
        .values(handoff_reason=None)
        .execution_options(synchronize_session=False)
    )
    events = 0
    if customer.channel == Channel.WHATSAPP and not external_id.startswith(ERASED_PREFIX):
        # The raw deliveries that mention them: as sender, as contact, or as recipient
        # (statuses have been stored without recipients since; older events had them).
        mentions = [
            {"contacts": [{"wa_id": external_id}]},
            {"messages": [{"from": external_id}]},
            {"statuses": [{"recipient_id": external_id}]},
        ]
        deleted = await session.execute(
            delete(WebhookEvent).where(
                WebhookEvent.organisation_id == scope.organisation_id,
                or_(*(WebhookEvent.value.contains(m) for m in mentions)),
            )
        )
        events = int(getattr(deleted, "rowcount", 0) or 0)
    customer.external_id = f"{ERASED_PREFIX}{customer.id}"
    customer.phone_number = None
    customer.display_name = None
    customer.opt_in_source = None
    customer.opt_out_source = None
    await session.flush()

    erasure = Erasure(
        customer_id=customer.id,
        conversations=len(conversation_ids),
        messages=int(getattr(messages, "rowcount", 0) or 0),
        attachments=int(getattr(attachments, "rowcount", 0) or 0),
        webhook_events=events,
    )
    await audit.record(
        session,
        action="customer.erased",
        actor=caller.actor if caller is not None else audit.Actor.system(),
        organisation_id=scope.organisation_id,
        target_type="customer",
        target_id=str(customer.id),
        details={
            "conversations": erasure.conversations,
            "messages": erasure.messages,
            "attachments": erasure.attachments,
            "webhook_events": erasure.webhook_events,
        },
    )
    return erasure
