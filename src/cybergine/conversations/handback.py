"""Handing a conversation back to the assistant: what becomes of a customer's message that
arrived while a person had the conversation and that nobody has answered yet.

The person handing back chooses: the assistant answers it (the default: the customer is
waiting), or they dealt with it themselves (a call, an e-mail) and the assistant must
not. Either way the verdict (``conversations.replies``) decides, as for every message:
the reply job is deferred and asks it; "dealt with" is recorded as a team-only message
after the customer's, which the verdict counts as the message answered by a person. So
a reply job queued for that message before the person took over cannot answer it either.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from sqlalchemy import desc

from cybergine.accounts.principal import Principal
from cybergine.assistants.models import Assistant
from cybergine.conversations import replies
from cybergine.conversations.message_types import SILENT_TYPES
from cybergine.conversations.models import (
    Conversation,
    ConversationState,
    Direction,
    Message,
    MessageStatus,
    Sender,
)
from cybergine.conversations.service import defer_reply, next_message_id
from cybergine.db.tenancy import TenantScope
from cybergine.realtime.events import Event, publish

# Sent to the customer on hand-back (both channels, as a notice from the platform),
# followed by the assistant's AI disclosure (``back_notice``).
ASSISTANT_BACK_NOTICE = "You're chatting with the assistant again."
DEALT_WITH_NOTE = "Handed back to the assistant: the customer's waiting message was dealt with."


class WaitingMessage(enum.StrEnum):
    """The hand-back's choice for the customer's unanswered message."""

    ASSISTANT_ANSWERS = "assistant_answers"
    DEALT_WITH = "dealt_with"


def assistant_back_notice(ai_disclosure: str | None) -> str:
    """What the customer is told when a person hands the conversation back: that the
    assistant answers again and, once more, that it is automated (policy §7)."""
    disclosure = (ai_disclosure or "").strip()
    return f"{ASSISTANT_BACK_NOTICE}\n\n{disclosure}" if disclosure else ASSISTANT_BACK_NOTICE


async def back_notice(scope: TenantScope, conversation: Conversation) -> str:
    """:func:`assistant_back_notice` with the disclosure of the conversation's assistant."""
    disclosure = None
    if conversation.assistant_id is not None:
        disclosure = await scope.session.scalar(
            scope.select(Assistant)
            .with_only_columns(Assistant.ai_disclosure)
            .where(Assistant.id == conversation.assistant_id)
        )
    return assistant_back_notice(disclosure)


def has_waiting_message(messages: Sequence[Message]) -> bool:
    """Whether the conversation, as shown (oldest first), ends with a customer's message
    nobody answered: the hand-back form then asks what becomes of it."""
    for message in reversed(messages):
        if message.direction == Direction.INTERNAL or message.type in SILENT_TYPES:
            continue
        if message.sender == Sender.SYSTEM and message.reply_to_id is None:
            continue  # a notice of the platform's own ("a person has joined") answers nothing
        return message.direction == Direction.INBOUND
    return False


async def settle_waiting_message(
    scope: TenantScope,
    principal: Principal,
    conversation: Conversation,  # locked, and the assistant's again (flushed)
    choice: WaitingMessage,
) -> bool:
    """The customer's latest message, if the assistant would answer it now, answered by
    the assistant (its reply job deferred) or recorded as dealt with. True when there
    was such a message."""
    assert conversation.state == ConversationState.BOT
    found = await scope.session.scalar(
        scope.select(Message)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.INBOUND,
            Message.type.not_in(SILENT_TYPES),
        )
        .order_by(desc(Message.id))
        .limit(1)
    )
    if found is None:
        return False
    latest = found.id
    state = await replies.read_state(scope.session, latest, history_turns=0)
    if state is None or state.verdict is not None:
        return False  # answered already, by the assistant or a person, or not for it
    if choice == WaitingMessage.ASSISTANT_ANSWERS:
        await defer_reply(scope.session, conversation.id, latest)
        return True
    record = scope.add(
        Message(
            id=next_message_id(conversation),
            conversation_id=conversation.id,
            direction=Direction.INTERNAL,
            sender=Sender.AGENT,
            author_user_id=principal.user_id,
            type=replies.DEALT_WITH_TYPE,
            text=DEALT_WITH_NOTE,
            status=MessageStatus.RECEIVED,
            send_attempts=0,
        )
    )
    await scope.session.flush()
    await publish(
        scope.session,
        Event(
            scope.organisation_id, conversation.id, "message", record.id, data={"internal": True}
        ),
    )
    return True
