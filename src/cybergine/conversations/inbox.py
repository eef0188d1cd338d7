"""The agent inbox: people on the team take conversations over from the assistant, leave
notes for each other, assign, hand back and close (policy §7: human oversight and the
right to human review). Replying is :func:`cybergine.conversations.service.send_agent_message`.

Every write takes the caller's ``TenantScope`` and ``Principal``, changes rows in the
caller's transaction (never commits), publishes the realtime event the change calls for
(delivered on commit) and audits what a person decided, without any message text.

What people read in the inbox (the list, one conversation) is
:mod:`cybergine.conversations.inbox_views`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from cybergine.accounts.models import Membership
from cybergine.accounts.permissions import Permission, allows
from cybergine.accounts.principal import Principal
from cybergine.conversations.channel import may_send_free_form
from cybergine.conversations.csat import send_survey
from cybergine.conversations.handback import (
    WaitingMessage,
    back_notice,
    settle_waiting_message,
)
from cybergine.conversations.models import (
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
            text=await back_notice(scope, conversation),
            payload={"notice": "assistant_back"},
        )
    else:
        # Told nothing now: the assistant's next reply starts with the disclosure again.
        conversation.ai_disclosed_at = None
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
    """Closed for good: the customer's next message starts a new conversation, and they
    are asked for their rating when the assistant's survey is on (``conversations.csat``).
    Closing a closed conversation changes nothing."""
    conversation = await _locked(scope, conversation_id)
    if conversation.state == ConversationState.CLOSED:
        return conversation
    previous = conversation.state
    conversation.state = ConversationState.CLOSED
    conversation.closed_at = datetime.now(UTC)
    await scope.session.flush()
    await publish(scope.session, state_event(conversation))
    survey = await send_survey(scope.session, conversation)
    await _audit(
        scope,
        principal,
        "conversation.closed",
        conversation,
        {"from": previous.value, "survey_sent": survey is not None},
    )
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
    """Whether the channel lets a free-form message through now (its adapter decides:
    web chat always, WhatsApp within 24 hours of the customer's last message)."""
    return may_send_free_form(conversation.channel, conversation.last_inbound_at, now=now)


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


__all__ = [
    "CLOSED_CONFLICT",
    "ERASED_LABEL",
    "JOIN_NOTICE",
    "add_note",
    "assign",
    "close",
    "hand_back",
    "mark_read",
    "take_over",
    "window_open",
]
