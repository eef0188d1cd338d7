"""The inbox as people read it: the list, ordered so that what needs a person comes
first (requests for human review, then conversations waiting for someone), with keyset
pages; and one conversation with its history, notes and attachments. The writes people
make from it are in :mod:`cybergine.conversations.inbox`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Subquery, and_, case, or_, select, true
from sqlalchemy.orm import defer

from cybergine import pagination
from cybergine.accounts.models import Membership, User
from cybergine.accounts.permissions import Permission, allows
from cybergine.assistants.models import Assistant
from cybergine.conversations import intents
from cybergine.conversations.channel import adapter_for
from cybergine.conversations.inbox import ERASED_LABEL, window_open
from cybergine.conversations.models import (
    Attachment,
    Channel,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Message,
    Sender,
)
from cybergine.db.tenancy import TenantScope

INBOX_PAGE = 50
# The newest messages of a conversation shown at once; the API pages through the rest.
THREAD_LIMIT = 500


# --- The list -------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxFilter:
    # None: every state.
    states: frozenset[ConversationState] | None = frozenset(
        {ConversationState.BOT, ConversationState.WAITING_FOR_HUMAN, ConversationState.HUMAN}
    )
    unassigned: bool = False
    assigned_user_id: uuid.UUID | None = None
    channel: Channel | None = None
    # Only the conversations whose ids it lists (``conversation_id``): an analytics
    # drill-down.
    among: Subquery | None = None


@dataclass(frozen=True)
class InboxRow:
    conversation: Conversation
    customer: Customer
    customer_label: str
    assistant_name: str | None
    assignee_name: str | None
    # The last message the customer could see (notes are not part of it).
    last_sender: Sender | None
    last_type: str | None
    last_text: str | None


@dataclass(frozen=True)
class InboxPage:
    rows: list[InboxRow]
    next_cursor: str | None


# Requests for human review a person has yet to finish come first, then conversations
# waiting for someone, then the rest by last activity.
_PRIORITY = case(
    (
        and_(
            Conversation.human_review_requested.is_(True),
            Conversation.state.in_((ConversationState.WAITING_FOR_HUMAN, ConversationState.HUMAN)),
        ),
        0,
    ),
    (Conversation.state == ConversationState.WAITING_FOR_HUMAN, 1),
    else_=2,
)


async def list_inbox(
    scope: TenantScope,
    filters: InboxFilter = InboxFilter(),
    *,
    limit: int = INBOX_PAGE,
    cursor: str | None = None,
) -> InboxPage:
    statement = scope.select(Conversation).add_columns(_PRIORITY.label("priority"))
    if filters.states is not None:
        statement = statement.where(Conversation.state.in_(filters.states))
    if filters.unassigned:
        statement = statement.where(Conversation.assigned_user_id.is_(None))
    elif filters.assigned_user_id is not None:
        statement = statement.where(Conversation.assigned_user_id == filters.assigned_user_id)
    if filters.channel is not None:
        statement = statement.where(Conversation.channel == filters.channel)
    if filters.among is not None:
        statement = statement.where(Conversation.id.in_(select(filters.among.c.conversation_id)))
    if cursor:
        statement = statement.where(
            _after(
                pagination.decode(
                    cursor,
                    pagination.INT,
                    pagination.optional(pagination.TIMESTAMP),
                    pagination.UUID,
                )
            )
        )
    statement = statement.order_by(
        _PRIORITY, Conversation.last_message_at.desc().nulls_last(), Conversation.id.desc()
    ).limit(limit + 1)
    found = [(row[0], int(row[1])) for row in (await scope.session.execute(statement)).all()]
    page = found[:limit]
    next_cursor = None
    if len(found) > limit:
        last, priority = page[-1]
        next_cursor = pagination.encode(priority, last.last_message_at, last.id)
    conversations = [conversation for conversation, _ in page]
    return InboxPage(rows=await _rows(scope, conversations), next_cursor=next_cursor)


async def _rows(scope: TenantScope, conversations: list[Conversation]) -> list[InboxRow]:
    if not conversations:
        return []
    ids = [c.id for c in conversations]
    customers = {
        c.id: c
        for c in (
            await scope.session.execute(
                scope.select(Customer).where(
                    Customer.id.in_({c.customer_id for c in conversations})
                )
            )
        ).scalars()
    }
    assistants = await assistant_names(scope, (c.assistant_id for c in conversations))
    people = await member_names(scope, (c.assigned_user_id for c in conversations))
    last = (
        select(Message.sender, Message.type, Message.text)
        .where(
            Message.organisation_id == scope.organisation_id,
            Message.conversation_id == Conversation.id,
            Message.direction != Direction.INTERNAL,
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
        .lateral("last_message")
    )
    previews = {
        row.id: row
        for row in (
            await scope.session.execute(
                select(Conversation.id, last.c.sender, last.c.type, last.c.text)
                .select_from(Conversation)
                .join(last, true())
                .where(
                    Conversation.organisation_id == scope.organisation_id,
                    Conversation.id.in_(ids),
                )
            )
        ).all()
    }
    rows = []
    for conversation in conversations:
        customer = customers[conversation.customer_id]
        preview = previews.get(conversation.id)
        rows.append(
            InboxRow(
                conversation=conversation,
                customer=customer,
                customer_label=customer_label(customer),
                assistant_name=assistants.get(conversation.assistant_id),
                assignee_name=_person(people, conversation.assigned_user_id),
                last_sender=preview.sender if preview else None,
                last_type=preview.type if preview else None,
                last_text=preview.text if preview else None,
            )
        )
    return rows


def customer_label(customer: Customer) -> str:
    """How the team calls a customer: their name, else their number, else a visitor id."""
    if customer.erased:
        return ERASED_LABEL
    if customer.display_name and customer.phone_number:
        return f"{customer.display_name} ({customer.phone_number})"
    if customer.display_name or customer.phone_number:
        return customer.display_name or customer.phone_number or ""
    return adapter_for(customer.channel).unnamed_customer_label(customer.external_id)


async def assistant_names(
    scope: TenantScope, ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID | None, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    result = await scope.session.execute(scope.select(Assistant).where(Assistant.id.in_(wanted)))
    return {assistant.id: assistant.name for assistant in result.scalars()}


async def member_names(scope: TenantScope, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """Names of the given users who are members of the organisation (a former member's
    name is not shown)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    result = await scope.session.execute(
        select(User.id, User.name)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == scope.organisation_id, User.id.in_(wanted))
    )
    return {row.id: row.name for row in result.all()}


def _person(names: dict[uuid.UUID, str], user_id: uuid.UUID | None) -> str | None:
    if user_id is None:
        return None
    return names.get(user_id, "a former team member")


async def repliers(scope: TenantScope) -> list[tuple[uuid.UUID, str]]:
    """The members a conversation may be assigned to (those who may reply), by name."""
    result = await scope.session.execute(
        select(User.id, User.name, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == scope.organisation_id)
        .order_by(User.name, User.id)
    )
    return [
        (row.id, row.name)
        for row in result.all()
        if allows(row.role, Permission.CONVERSATIONS_REPLY)
    ]


def _after(cursor: tuple[int, datetime | None, uuid.UUID]) -> ColumnElement[bool]:
    """Rows after the cursor in ``priority, last_message_at DESC NULLS LAST, id DESC``."""
    priority, at, id = cursor
    if at is None:
        same = and_(Conversation.last_message_at.is_(None), Conversation.id < id)
    else:
        same = or_(
            Conversation.last_message_at < at,
            and_(Conversation.last_message_at == at, Conversation.id < id),
            Conversation.last_message_at.is_(None),
        )
    rank = _PRIORITY
    return or_(rank > priority, and_(rank == priority, same))


# --- One conversation -----------------------------------------------------------------


@dataclass(frozen=True)
class ConversationView:
    conversation: Conversation
    customer: Customer
    customer_label: str
    assistant_name: str | None
    assignee_name: str | None
    # Oldest first; the newest THREAD_LIMIT of them.
    messages: list[Message]
    earlier: int  # older messages not shown
    attachments: dict[uuid.UUID, Attachment]
    authors: dict[uuid.UUID, str]
    window_open: bool
    handoff_reason: str | None  # readable


# What the intent rules record as a handoff's reason, as a person reads it; the
# assistant's own reasons (a sentence) are shown as written.
HANDOFF_REASONS = {
    intents.REASON_CUSTOMER_REQUEST: "The customer asked for a person.",
    intents.REASON_HUMAN_REVIEW: (
        "The customer asked for a person to review an automated decision."
    ),
    intents.REASON_KEYWORD: "The customer used one of your handoff keywords.",
}


async def view_conversation(
    scope: TenantScope, conversation_id: uuid.UUID, *, limit: int = THREAD_LIMIT
) -> ConversationView:
    conversation = await scope.get(Conversation, conversation_id, what="conversation")
    customer = await scope.get(Customer, conversation.customer_id, what="conversation")
    newest = list(
        (
            await scope.session.execute(
                scope.select(Message)
                .where(Message.conversation_id == conversation.id)
                .order_by(Message.created_at.desc(), Message.id.desc())
                .limit(limit + 1)
            )
        ).scalars()
    )
    earlier = 0
    if len(newest) > limit:
        newest = newest[:limit]
        total = await scope.count(
            scope.select(Message).where(Message.conversation_id == conversation.id)
        )
        earlier = total - limit
    messages = list(reversed(newest))
    attachments: dict[uuid.UUID, Attachment] = {}
    if messages:
        result = await scope.session.execute(
            scope.select(Attachment)
            .where(Attachment.message_id.in_([m.id for m in messages]))
            .options(defer(Attachment.data, raiseload=True))
        )
        attachments = {a.message_id: a for a in result.scalars()}
    people = await member_names(
        scope, [conversation.assigned_user_id, *(m.author_user_id for m in messages)]
    )
    assistants = await assistant_names(scope, [conversation.assistant_id])
    return ConversationView(
        conversation=conversation,
        customer=customer,
        customer_label=customer_label(customer),
        assistant_name=assistants.get(conversation.assistant_id),
        assignee_name=_person(people, conversation.assigned_user_id),
        messages=messages,
        earlier=earlier,
        attachments=attachments,
        authors=people,
        window_open=window_open(conversation),
        handoff_reason=HANDOFF_REASONS.get(
            conversation.handoff_reason or "", conversation.handoff_reason
        ),
    )


__all__ = [
    "ConversationView",
    "InboxFilter",
    "InboxPage",
    "InboxRow",
    "assistant_names",
    "customer_label",
    "list_inbox",
    "member_names",
    "repliers",
    "view_conversation",
]
