"""Reading conversations, their messages and attachments: the read side, no writes.

Everything goes through the caller's ``TenantScope``, so another organisation's
conversation or message is ``NotFound`` exactly like a missing one. Lists use keyset
pagination with the opaque cursor of ``cybergine.pagination`` (the last row's sort key
and id), so a page is stable while new messages arrive.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Subquery, and_, or_, select
from sqlalchemy.orm import defer

from cybergine import pagination
from cybergine.conversations.models import (
    Attachment,
    AttachmentStatus,
    Channel,
    Conversation,
    ConversationState,
    Customer,
    Message,
)
from cybergine.db.tenancy import TenantScope
from cybergine.errors import InvalidInput, NotFound

DEFAULT_CONVERSATION_LIMIT = 50
DEFAULT_MESSAGE_LIMIT = 100
MAX_LIMIT = 200


# --- Conversations --------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationPage:
    items: list[Conversation]
    customers: dict[uuid.UUID, Customer]
    next_cursor: str | None


async def _customers(
    scope: TenantScope, conversations: list[Conversation]
) -> dict[uuid.UUID, Customer]:
    ids = {c.customer_id for c in conversations}
    if not ids:
        return {}
    result = await scope.session.execute(scope.select(Customer).where(Customer.id.in_(ids)))
    return {customer.id: customer for customer in result.scalars()}


async def list_conversations(
    scope: TenantScope,
    *,
    state: ConversationState | None = None,
    channel: Channel | None = None,
    assistant_id: uuid.UUID | None = None,
    human_review: bool | None = None,
    among: Subquery | None = None,
    limit: int = DEFAULT_CONVERSATION_LIMIT,
    cursor: str | None = None,
) -> ConversationPage:
    """Newest activity first: ``last_message_at DESC NULLS LAST, id DESC``. ``among``:
    only the conversations whose ids it lists (``conversation_id``), such as those an
    analytics figure counts."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit is between 1 and {MAX_LIMIT}.", field="limit")
    statement = scope.select(Conversation)
    if state is not None:
        statement = statement.where(Conversation.state == state)
    if channel is not None:
        statement = statement.where(Conversation.channel == channel)
    if assistant_id is not None:
        statement = statement.where(Conversation.assistant_id == assistant_id)
    if human_review is not None:
        statement = statement.where(Conversation.human_review_requested == human_review)
    if among is not None:
        statement = statement.where(Conversation.id.in_(select(among.c.conversation_id)))
    if cursor:
        after_at, after_id = pagination.decode(
            cursor, pagination.optional(pagination.TIMESTAMP), pagination.UUID
        )
        if after_at is None:
            # Already among the never-active conversations, which come last.
            statement = statement.where(
                Conversation.last_message_at.is_(None), Conversation.id < after_id
            )
        else:
            statement = statement.where(
                or_(
                    Conversation.last_message_at < after_at,
                    and_(Conversation.last_message_at == after_at, Conversation.id < after_id),
                    Conversation.last_message_at.is_(None),
                )
            )
    statement = statement.order_by(
        Conversation.last_message_at.desc().nulls_last(), Conversation.id.desc()
    ).limit(limit + 1)
    rows = list((await scope.session.execute(statement)).scalars())
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = pagination.encode(last.last_message_at, last.id)
    return ConversationPage(
        items=items, customers=await _customers(scope, items), next_cursor=next_cursor
    )


async def get_conversation(
    scope: TenantScope, conversation_id: uuid.UUID
) -> tuple[Conversation, Customer]:
    conversation = await scope.get(Conversation, conversation_id, what="conversation")
    customer = await scope.get(Customer, conversation.customer_id, what="conversation")
    return conversation, customer


# --- Messages -------------------------------------------------------------------------


@dataclass(frozen=True)
class MessagePage:
    items: list[Message]
    # The attachment of each message that has one, without its bytes.
    attachments: dict[uuid.UUID, Attachment]
    next_cursor: str | None


async def _attachments(scope: TenantScope, messages: list[Message]) -> dict[uuid.UUID, Attachment]:
    ids = [m.id for m in messages]
    if not ids:
        return {}
    result = await scope.session.execute(
        scope.select(Attachment)
        .where(Attachment.message_id.in_(ids))
        .options(defer(Attachment.data, raiseload=True))
    )
    return {attachment.message_id: attachment for attachment in result.scalars()}


async def list_messages(
    scope: TenantScope,
    conversation_id: uuid.UUID,
    *,
    limit: int = DEFAULT_MESSAGE_LIMIT,
    cursor: str | None = None,
) -> MessagePage:
    """Oldest first: ``created_at ASC, id ASC``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit is between 1 and {MAX_LIMIT}.", field="limit")
    conversation = await scope.get(Conversation, conversation_id, what="conversation")
    statement = scope.select(Message).where(Message.conversation_id == conversation.id)
    if cursor:
        after_at, after_id = pagination.decode(cursor, pagination.TIMESTAMP, pagination.UUID)
        statement = statement.where(
            or_(
                Message.created_at > after_at,
                and_(Message.created_at == after_at, Message.id > after_id),
            )
        )
    statement = statement.order_by(Message.created_at, Message.id).limit(limit + 1)
    rows = list((await scope.session.execute(statement)).scalars())
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = pagination.encode(last.created_at, last.id)
    return MessagePage(
        items=items, attachments=await _attachments(scope, items), next_cursor=next_cursor
    )


async def get_message(
    scope: TenantScope, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> Message:
    conversation = await scope.get(Conversation, conversation_id, what="conversation")
    message = await scope.get(Message, message_id, what="message")
    if message.conversation_id != conversation.id:
        raise NotFound("No such message.")
    return message


@dataclass(frozen=True)
class StoredFile:
    data: bytes
    mime_type: str | None
    filename: str | None


async def get_attachment_file(
    scope: TenantScope, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> StoredFile:
    """The stored bytes of a message's attachment; NotFound when it has none, or when it
    was not (or not yet) stored."""
    message = await get_message(scope, conversation_id, message_id)
    result = await scope.session.execute(
        scope.select(Attachment).where(Attachment.message_id == message.id)
    )
    attachment = result.scalar_one_or_none()
    if attachment is None or attachment.status is not AttachmentStatus.STORED:
        raise NotFound("This message has no stored attachment.")
    if attachment.data is None:
        raise NotFound("This message has no stored attachment.")
    return StoredFile(
        data=attachment.data, mime_type=attachment.mime_type, filename=attachment.filename
    )
