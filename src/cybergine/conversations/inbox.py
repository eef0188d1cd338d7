"""The agent inbox: people on the team take conversations over from the assistant, leave
notes for each other, assign, hand back and close (policy §7: human oversight and the
right to human review). Replying is :func:`cybergine.conversations.service.send_agent_message`.

Every write takes the caller's ``TenantScope`` and ``Principal``, changes rows in the
caller's transaction (never commits), publishes the realtime event the change calls for
(delivered on commit) and audits what a person decided, without any message text.

The read side of the inbox lives here too: the list, ordered so that what needs a person
comes first (requests for human review, then conversations waiting for someone), and one
conversation with its history.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, or_, select, true, update
from sqlalchemy.orm import defer

from cybergine.accounts.models import Membership, User
from cybergine.accounts.permissions import Permission, allows
from cybergine.accounts.principal import Principal
from cybergine.assistants.models import Assistant
from cybergine.conversations import intents
from cybergine.conversations.handback import (
    ASSISTANT_BACK_NOTICE,
    WaitingMessage,
    settle_waiting_message,
)
from cybergine.conversations.models import (
    Attachment,
    Channel,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Message,
    MessageStatus,
    Sender,
)
from cybergine.conversations.service import (
    ERASED_CONFLICT,
    SERVICE_WINDOW,
    message_text,
    next_message_id,
    queue_outbound,
    state_event,
)
from cybergine.db.tenancy import TenantScope
from cybergine.errors import Conflict, InvalidInput
from cybergine.privacy import audit
from cybergine.realtime.events import Event, publish

JOIN_NOTICE = "A person from our team has joined the conversation."
MAX_NOTE = 5000
INBOX_PAGE = 50
# The newest messages of a conversation shown at once; the API pages through the rest.
THREAD_LIMIT = 500
CLOSED_CONFLICT = "This conversation is closed. The customer's next message starts a new one."
ERASED_LABEL = "Erased customer"


# --- Writes ---------------------------------------------------------------------------


async def take_over(
    scope: TenantScope, principal: Principal, conversation_id: uuid.UUID
) -> Conversation:
    """A person answers from now on: the assistant falls silent, the conversation is
    assigned to the caller if nobody has it, and the customer is told (when the channel
    still lets us write to them)."""
    conversation = await _locked(scope, conversation_id)
    await _refuse_closed(scope, conversation)
    previous = conversation.state
    assign_caller = conversation.assigned_user_id is None and principal.user_id is not None
    if previous == ConversationState.HUMAN and not assign_caller:
        return conversation  # already with a person: nothing changes
    conversation.state = ConversationState.HUMAN
    if assign_caller:
        conversation.assigned_user_id = principal.user_id
    await scope.session.flush()
    await publish(scope.session, state_event(conversation))

    notified = previous != ConversationState.HUMAN and await _may_write_to(scope, conversation)
    if notified:
        await queue_outbound(
            scope.session,
            conversation,
            sender=Sender.SYSTEM,
            type="text",
            text=JOIN_NOTICE,
            payload={"notice": "agent_joined"},
        )
    await _audit(
        scope,
        principal,
        "conversation.taken_over",
        conversation,
        {
            "from": previous.value,
            "assigned_user_id": _str(conversation.assigned_user_id),
            "customer_notified": notified,
        },
    )
    return conversation


async def hand_back(
    scope: TenantScope,
    principal: Principal,
    conversation_id: uuid.UUID,
    waiting: WaitingMessage = WaitingMessage.ASSISTANT_ANSWERS,
) -> Conversation:
    """The assistant answers the customer again: the message they wrote while a person
    had the conversation, unless ``waiting`` says the person dealt with it (see
    ``conversations.handback``), and the next ones. The customer is told (when the
    channel still lets us write to them)."""
    conversation = await _locked(scope, conversation_id)
    await _refuse_closed(scope, conversation)
    if conversation.state == ConversationState.BOT:
        return conversation
    previous = conversation.state
    conversation.state = ConversationState.BOT
    await scope.session.flush()
    await publish(scope.session, state_event(conversation))

    # The notice first, so that an answer to the waiting message comes after it.
    notified = await _may_write_to(scope, conversation)
    if notified:
        await queue_outbound(
            scope.session,
            conversation,
            sender=Sender.SYSTEM,
            type="text",
            text=ASSISTANT_BACK_NOTICE,
            payload={"notice": "assistant_back"},
        )
    settled = await settle_waiting_message(scope, principal, conversation, waiting)
    await _audit(
        scope,
        principal,
        "conversation.handed_back",
        conversation,
        {
            "from": previous.value,
            "waiting_message": waiting.value if settled else None,
            "customer_notified": notified,
        },
    )
    return conversation


async def close(
    scope: TenantScope, principal: Principal, conversation_id: uuid.UUID
) -> Conversation:
    """Closed for good: the customer's next message starts a new conversation. Closing a
    closed conversation changes nothing."""
    conversation = await _locked(scope, conversation_id)
    if conversation.state == ConversationState.CLOSED:
        return conversation
    previous = conversation.state
    conversation.state = ConversationState.CLOSED
    conversation.closed_at = datetime.now(UTC)
    await scope.session.flush()
    await publish(scope.session, state_event(conversation))
    await _audit(scope, principal, "conversation.closed", conversation, {"from": previous.value})
    return conversation


async def assign(
    scope: TenantScope,
    principal: Principal,
    conversation_id: uuid.UUID,
    user_id: uuid.UUID | None,
) -> Conversation:
    """Give the conversation to a member who may reply (owner, admin, agent), or to
    nobody (``None``)."""
    conversation = await _locked(scope, conversation_id)
    if user_id is not None:
        member = (
            await scope.session.execute(
                scope.select(Membership).where(Membership.user_id == user_id)
            )
        ).scalar_one_or_none()
        if member is None or not allows(member.role, Permission.CONVERSATIONS_REPLY):
            raise InvalidInput(
                "Assign the conversation to someone on the team who may reply: an owner, "
                "an admin or an agent.",
                field="user_id",
            )
    if conversation.assigned_user_id == user_id:
        return conversation
    previous = conversation.assigned_user_id
    conversation.assigned_user_id = user_id
    await scope.session.flush()
    await publish(scope.session, state_event(conversation))
    await _audit(
        scope,
        principal,
        "conversation.assigned",
        conversation,
        {"from": _str(previous), "to": _str(user_id)},
    )
    return conversation


async def add_note(
    scope: TenantScope, principal: Principal, conversation_id: uuid.UUID, text: str
) -> Message:
    """A note for the team, kept with the conversation and never sent to the customer.
    Written under the conversation's lock, like every message, so ids follow commit order."""
    text = message_text(text, limit=MAX_NOTE, what="A note", empty="Write the note first.")
    conversation = await _locked(scope, conversation_id)
    note = scope.add(
        Message(
            id=next_message_id(conversation),
            conversation_id=conversation.id,
            direction=Direction.INTERNAL,
            sender=Sender.AGENT,
            author_user_id=principal.user_id,
            type="note",
            text=text,
            status=MessageStatus.RECEIVED,
            send_attempts=0,
        )
    )
    await scope.session.flush()
    await publish(
        scope.session,
        Event(scope.organisation_id, conversation.id, "message", note.id, data={"internal": True}),
    )
    return note


async def mark_read(scope: TenantScope, conversation_id: uuid.UUID) -> bool:
    """The team has seen the customer's messages. True when something was unread: only
    then is a write made and an event published (so a page that refreshes on events and
    marks read when it does cannot wake itself forever)."""
    conversation = await scope.get(Conversation, conversation_id, what="conversation")
    if conversation.unread_count == 0:
        return False
    changed = await scope.session.scalar(
        update(Conversation)
        .where(
            Conversation.organisation_id == scope.organisation_id,
            Conversation.id == conversation.id,
            Conversation.unread_count > 0,
        )
        .values(unread_count=0)
        .returning(Conversation.id)
    )
    if changed is None:
        return False
    await publish(scope.session, Event(scope.organisation_id, conversation.id, "read"))
    return True


def window_open(conversation: Conversation, *, now: datetime | None = None) -> bool:
    """Whether the channel lets a free-form message through now: web chat always,
    WhatsApp within 24 hours of the customer's last message."""
    if conversation.channel != Channel.WHATSAPP:
        return True
    return conversation.last_inbound_at is not None and (
        (now or datetime.now(UTC)) - conversation.last_inbound_at < SERVICE_WINDOW
    )


async def _refuse_closed(scope: TenantScope, conversation: Conversation) -> None:
    if conversation.state != ConversationState.CLOSED:
        return
    customer = await scope.get(Customer, conversation.customer_id, what="conversation")
    raise Conflict(ERASED_CONFLICT if customer.erased else CLOSED_CONFLICT)


async def _may_write_to(scope: TenantScope, conversation: Conversation) -> bool:
    customer = await scope.get(Customer, conversation.customer_id, what="conversation")
    return customer.opted_out_at is None and window_open(conversation)


async def _locked(scope: TenantScope, conversation_id: uuid.UUID) -> Conversation:
    return await scope.get(Conversation, conversation_id, for_update=True, what="conversation")


async def _audit(
    scope: TenantScope,
    principal: Principal,
    action: str,
    conversation: Conversation,
    details: dict[str, Any],
) -> None:
    await audit.record(
        scope.session,
        action=action,
        actor=principal.actor,
        organisation_id=scope.organisation_id,
        target_type="conversation",
        target_id=str(conversation.id),
        details=details,
    )


def _str(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


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
    if cursor:
        statement = statement.where(_after(_decode_cursor(cursor)))
    statement = statement.order_by(
        _PRIORITY, Conversation.last_message_at.desc().nulls_last(), Conversation.id.desc()
    ).limit(limit + 1)
    found = [(row[0], int(row[1])) for row in (await scope.session.execute(statement)).all()]
    page = found[:limit]
    next_cursor = None
    if len(found) > limit:
        last, priority = page[-1]
        next_cursor = _encode_cursor(priority, last.last_message_at, last.id)
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
    if customer.channel == Channel.WEBCHAT:
        return f"Web visitor {customer.external_id[:8]}"
    return customer.external_id


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


def _encode_cursor(priority: int, at: datetime | None, id: uuid.UUID) -> str:
    raw = json.dumps([priority, at.isoformat() if at is not None else None, str(id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, datetime | None, uuid.UUID]:
    invalid = InvalidInput("That link to the next page is not valid.", field="cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True))
        if not (
            isinstance(data, list)
            and len(data) == 3
            and isinstance(data[0], int)
            and (data[1] is None or isinstance(data[1], str))
            and isinstance(data[2], str)
        ):
            raise invalid
        at = None if data[1] is None else datetime.fromisoformat(data[1])
        found = (data[0], at, uuid.UUID(data[2]))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise invalid from exc
    if at is not None and at.tzinfo is None:
        raise invalid
    return found


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
    "JOIN_NOTICE",
    "ConversationView",
    "InboxFilter",
    "InboxPage",
    "InboxRow",
    "add_note",
    "assign",
    "close",
    "hand_back",
    "list_inbox",
    "mark_read",
    "repliers",
    "take_over",
    "view_conversation",
    "window_open",
]
