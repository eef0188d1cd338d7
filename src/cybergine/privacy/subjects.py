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

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update

from cybergine.accounts.principal import Principal
from cybergine.channels.whatsapp.models import WebhookEvent
from cybergine.conversations.customers import phone_digits, search_statement
from cybergine.conversations.models import (
    ERASED_PREFIX,
    Attachment,
    Channel,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Message,
    MessageStatus,
)
from cybergine.conversations.service import conversation_lock, send_lock, state_event
from cybergine.db.tenancy import TenantScope
from cybergine.errors import InvalidInput
from cybergine.privacy import audit
from cybergine.queue import cancel_waiting_jobs
from cybergine.realtime.events import publish

EXPORT_FORMAT = "cybergine.customer-export/1"
# What a message queued for an erased customer says instead of going out.
NOT_SENT_ERASED = "Not sent: the customer's data was erased."
# The word typed to confirm the erasure of a customer who has no name to type.
ERASE_WORD = "erase"


async def find_customers(
    scope: TenantScope,
    *,
    query: str = "",
    before: uuid.UUID | None = None,
    phone_number: str | None = None,
    external_id: str | None = None,
    limit: int = 50,
) -> list[Customer]:
    """The customers a request names, by phone number (any formatting) or channel id,
    or matching ``query`` as the dashboard's search does; newest first, below ``before``
    (the last id of the previous page)."""
    statement = search_statement(scope, query, before=before)
    if phone_number:
        digits = phone_digits(phone_number)
        if digits is None:
            raise InvalidInput("That is not a phone number.", field="phone_number")
        statement = statement.where(
            or_(Customer.phone_number == f"+{digits}", Customer.external_id == digits)
        )
    if external_id:
        statement = statement.where(Customer.external_id == external_id)
    statement = statement.limit(limit)
    return list((await scope.session.execute(statement)).scalars())


async def export_customer(
    scope: TenantScope, caller: Principal, customer_id: uuid.UUID
) -> dict[str, Any]:
    """Everything held about one customer; audited, since the copy leaves the platform."""
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
    await audit.record(
        scope.session,
        action="customer.exported",
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="customer",
        target_id=str(customer.id),
        details={"conversations": len(conversations), "messages": len(messages)},
    )
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
            "opt_out_source": customer.opt_out_source,
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
    conversations_closed: int


async def erase_customer(
    scope: TenantScope, caller: Principal | None, customer_id: uuid.UUID
) -> Erasure:
    """Erase one customer's personal data; ``caller`` None: a platform job (a webhook).
    Their conversations are closed for good, and nothing waiting to be sent or answered
    goes out. Idempotent: erasing an erased customer finds nothing more to erase."""
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
    closed = await _close_for_good(scope, customer)
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
        conversations_closed=closed,
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
            "conversations_closed": erasure.conversations_closed,
        },
    )
    return erasure


async def _close_for_good(scope: TenantScope, customer: Customer) -> int:
    """Close the customer's open conversations (the inbox then shows them closed, with no
    reply box), fail their messages still queued for delivery, and cancel the reply and
    delivery jobs that have not started: the customer's next message starts afresh, as a
    new customer. Answers how many conversations were closed."""
    session = scope.session
    # Locked after the customer's row, in the order inbound messages take them.
    still_open = list(
        (
            await session.execute(
                scope.select(Conversation)
                .where(
                    Conversation.customer_id == customer.id,
                    Conversation.state != ConversationState.CLOSED,
                )
                .order_by(Conversation.id)
                .with_for_update()
            )
        ).scalars()
    )
    for conversation in still_open:
        conversation.state = ConversationState.CLOSED
        conversation.closed_at = datetime.now(UTC)
        conversation.unread_count = 0
    await session.flush()
    for conversation in still_open:
        await publish(session, state_event(conversation))
    ids = [conversation.id for conversation in still_open]
    if not ids:
        return 0
    await session.execute(
        update(Message)
        .where(
            Message.organisation_id == scope.organisation_id,
            Message.conversation_id.in_(ids),
            Message.direction == Direction.OUTBOUND,
            Message.status == MessageStatus.QUEUED,
        )
        .values(status=MessageStatus.FAILED, failed_at=func.now(), error_title=NOT_SENT_ERASED)
        .execution_options(synchronize_session=False)
    )
    await cancel_waiting_jobs(
        session, [lock for id in ids for lock in (conversation_lock(id), send_lock(id))]
    )
    return len(ids)


def erasure_confirmation(customer: Customer) -> str:
    """What a person types to confirm erasing ``customer``: their name, or the word
    "erase" for a customer without one."""
    name = " ".join((customer.display_name or "").split())
    return name or ERASE_WORD


def _comparable(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


async def erase_confirmed(
    scope: TenantScope, caller: Principal, customer_id: uuid.UUID, typed: str
) -> Erasure:
    """Erasure as a person asks for it in the dashboard: only once they have typed the
    customer's name (or the word shown), so a slip of the mouse erases nobody."""
    customer = await scope.get(Customer, customer_id, what="customer")
    expected = erasure_confirmation(customer)
    if _comparable(typed) != _comparable(expected):
        raise InvalidInput(
            f"Type “{expected}” exactly as shown to confirm the erasure.", field="confirmation"
        )
    return await erase_customer(scope, caller, customer.id)
