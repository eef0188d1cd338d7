"""Seeding helpers for channels and conversations: rows written straight through the ORM
(no write API exists for them yet), in the caller's session.

Each helper adds its row to the given organisation, flushes (so ids and server defaults
are set) and returns it; committing is the caller's: ``async with database.transaction()
as session: ...``. Keyword arguments override any column. Nothing is derived behind the
caller's back: a message does not move its conversation's ``last_message_at``.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.channels.whatsapp.models import WhatsAppNumber
from cybergine.channels.whatsapp.service import verify_token_digest
from cybergine.conversations.models import (
    Attachment,
    AttachmentStatus,
    Channel,
    Conversation,
    Customer,
    Direction,
    Message,
    MessageStatus,
    Sender,
)
from cybergine.db.tenancy import TenantScope


def digits(count: int = 15) -> str:
    """A random numeric id (WhatsApp ids are digits), unique enough for one test run."""
    return str(secrets.randbelow(9 * 10 ** (count - 1)) + 10 ** (count - 1))


async def _added(session: AsyncSession, organisation_id: uuid.UUID, row: Any) -> Any:
    TenantScope(session, organisation_id).add(row)
    await session.flush()
    return row


async def make_whatsapp_number(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    assistant_id: uuid.UUID | None = None,
    **fields: Any,
) -> WhatsAppNumber:
    """A connected number with a random ``phone_number_id``. ``verify_token="..."`` is
    stored as its SHA-256, as the API does."""
    verify_token = fields.pop("verify_token", None)
    if verify_token is not None:
        fields["verify_token_sha256"] = verify_token_digest(verify_token)
    values: dict[str, Any] = {
        "assistant_id": assistant_id,
        "phone_number_id": digits(),
        "waba_id": digits(),
        "display_phone_number": "+1 555 010 0200",
        "access_token": f"EAAtest{secrets.token_hex(16)}",
        "app_secret": None,
        "verify_token_sha256": None,
        "opt_out_keywords": [],
        "opt_in_keywords": [],
        "send_rate": None,
        "active": True,
        **fields,
    }
    number: WhatsAppNumber = await _added(session, organisation_id, WhatsAppNumber(**values))
    return number


async def make_customer(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    *,
    channel: Channel = Channel.WHATSAPP,
    **fields: Any,
) -> Customer:
    """A customer with a random external id (on WhatsApp, also its phone number)."""
    external_id = fields.pop("external_id", None) or digits(12)
    values: dict[str, Any] = {
        "channel": channel,
        "external_id": external_id,
        "phone_number": f"+{external_id}" if channel is Channel.WHATSAPP else None,
        "display_name": "Casey Customer",
        **fields,
    }
    customer: Customer = await _added(session, organisation_id, Customer(**values))
    return customer


async def make_conversation(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    *,
    customer: Customer | None = None,
    **fields: Any,
) -> Conversation:
    """A conversation (state ``bot`` unless given) of ``customer``, or of a new customer
    on the conversation's channel."""
    channel = fields.pop("channel", None) or (customer.channel if customer else Channel.WHATSAPP)
    if customer is None:
        customer = await make_customer(session, organisation_id, channel=channel)
    values: dict[str, Any] = {
        "channel": channel,
        "customer_id": customer.id,
        "human_review_requested": False,
        "unread_count": 0,
        **fields,
    }
    conversation: Conversation = await _added(session, organisation_id, Conversation(**values))
    return conversation


async def make_message(
    session: AsyncSession,
    conversation: Conversation,
    *,
    direction: Direction = Direction.INBOUND,
    text: str | None = "Hello",
    **fields: Any,
) -> Message:
    """A text message in ``conversation``: from the customer (status ``received``) when
    inbound, from the assistant (status ``sent``) when outbound. Pass ``created_at`` to
    control the order: rows of one transaction otherwise share the same ``now()``."""
    inbound = direction is Direction.INBOUND
    values: dict[str, Any] = {
        "conversation_id": conversation.id,
        "direction": direction,
        "sender": Sender.CUSTOMER if inbound else Sender.ASSISTANT,
        "type": "text",
        "text": text,
        "status": MessageStatus.RECEIVED if inbound else MessageStatus.SENT,
        "send_attempts": 0,
        **fields,
    }
    message: Message = await _added(session, conversation.organisation_id, Message(**values))
    return message


async def make_attachment(
    session: AsyncSession,
    message: Message,
    *,
    data: bytes | None = b"\x89PNG\r\n\x1a\n fake image",
    mime_type: str | None = "image/png",
    **fields: Any,
) -> Attachment:
    """The attachment of ``message``: stored with ``data`` (size and SHA-256 filled in),
    or, with ``data=None``, pending unless a status is given."""
    values: dict[str, Any] = {
        "message_id": message.id,
        "media_id": digits(),
        "status": AttachmentStatus.STORED if data is not None else AttachmentStatus.PENDING,
        "mime_type": mime_type,
        "filename": None,
        "data": data,
        "size_bytes": len(data) if data is not None else None,
        "sha256": hashlib.sha256(data).hexdigest() if data is not None else None,
        **fields,
    }
    attachment: Attachment = await _added(session, message.organisation_id, Attachment(**values))
    return attachment
