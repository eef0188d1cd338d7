"""Writing conversations: outbound messages queued for their channel, the reply job,
handoff to people, agents' messages, and the ids and locks every writer shares.

What customers write is recorded by ``conversations.inbound``. Channel-independent: a
channel is reached through its adapter (``conversations.channel``). Never commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from cybergine.accounts.models import Membership, Role, User
from cybergine.accounts.principal import Principal
from cybergine.conversations.channel import adapter_for, may_send_free_form
from cybergine.conversations.locks import conversation_lock
from cybergine.conversations.models import (
    Conversation,
    ConversationState,
    Customer,
    Message,
    Sender,
)
from cybergine.conversations.outbound import write_outbound
from cybergine.db.ids import uuid7, uuid7_at
from cybergine.db.tenancy import TenantScope
from cybergine.errors import Conflict, InvalidInput
from cybergine.job_names import JobName
from cybergine.queue import defer
from cybergine.realtime.events import Event, publish

log = structlog.get_logger(__name__)


# An agent's message (the API's limit too; WhatsApp splits a long text into several).
MAX_AGENT_TEXT = 20_000
# Characters that show nothing and are not whitespace to ``str.strip``: a message of only
# these and spaces looks empty on every screen.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff")


async def defer_reply(
    session: AsyncSession, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> None:
    """The job that answers one customer message, in the caller's transaction; it asks
    the verdict (``conversations.replies``) before answering, so deferring it for a
    message that needs no answer costs one read."""
    await defer(
        session, JobName.REPLY, lock=conversation_lock(conversation_id), message_id=str(message_id)
    )


def message_text(text: str, *, limit: int, what: str, empty: str) -> str:
    """The text of a message someone writes (a visitor, or a person on the team: a reply
    or a note), as stored: without the whitespace around it. The one rule for every way
    in (API, dashboard, widget), since a schema's ``min_length`` lets "   " through:
    refused on the field ``text`` (422) when nothing visible is left, saying ``empty``,
    or when it is longer than ``limit`` characters."""
    if all(character.isspace() or character in _INVISIBLE for character in text):
        raise InvalidInput(empty, field="text")
    text = text.strip()
    if len(text) > limit:
        raise InvalidInput(
            f"{what} is at most {limit:,} characters; this one has {len(text):,}.", field="text"
        )
    return text


def next_message_id(conversation: Conversation, *, at: datetime | None = None) -> uuid.UUID:
    """An id for a new message of ``conversation``, above every earlier one; of now, or
    of ``at`` for a message written with a time of its own (the demo's history).

    Callers hold the conversation's row lock until they commit, so ids follow commit
    order within a conversation even when several processes write to it in the same
    millisecond (UUIDv7 orders by time only to the millisecond across processes). A
    client that has seen id X can then ask for "after X" and miss nothing.
    """
    candidate = message_id_after(conversation.last_message_id, at=at)
    conversation.last_message_id = candidate
    return candidate


def message_id_after(last: uuid.UUID | None, *, at: datetime | None = None) -> uuid.UUID:
    """A new message id above ``last`` (the conversation's newest), which it does not
    move: the caller does once the message is stored (``next_message_id``). Of now, or of
    ``at`` for a message written with a time of its own (the demo's history)."""
    candidate = uuid7() if at is None else uuid7_at(at)
    if last is not None and candidate.int <= last.int:
        candidate = uuid.UUID(int=last.int + 1)
    return candidate


def state_event(conversation: Conversation) -> Event:
    return Event(
        conversation.organisation_id,
        conversation.id,
        "state",
        customer_id=conversation.customer_id,
        data={"state": conversation.state.value},
    )


async def queue_outbound(
    session: AsyncSession,
    conversation: Conversation,  # locked (FOR UPDATE) by the caller
    *,
    sender: Sender,
    type: str,
    text: str | None,
    payload: Mapping[str, Any] | None = None,
    reply_to_id: uuid.UUID | None = None,
    author_user_id: uuid.UUID | None = None,
) -> Message:
    """An outbound message, queued with its delivery job in this transaction (or, on a
    channel that delivers by storing, sent), by the statement family of every outbound
    write (``conversations.outbound``)."""
    await session.flush()  # the statement reads the conversation's row as it is now
    message_id = await write_outbound(
        session,
        adapter_for(conversation.channel),
        conversation.organisation_id,
        conversation.id,
        sender=sender,
        type=type,
        text=text,
        payload=payload,
        reply_to_id=reply_to_id,
        author_user_id=author_user_id,
    )
    # The statement moved the conversation on; the caller's object says so too, without
    # writing it again.
    set_committed_value(conversation, "last_message_id", message_id)
    return await session.get_one(Message, message_id)


async def hand_off(
    session: AsyncSession,
    conversation: Conversation,
    *,
    reason: str,
    human_review: bool,
    public_url: str,
) -> None:
    """The assistant stops answering this conversation, and the team is told by e-mail
    (which names no customer and quotes nothing: it only links to the conversation)."""
    from cybergine.mail.service import queue_email

    conversation.state = ConversationState.WAITING_FOR_HUMAN
    conversation.handoff_reason = reason[:1000]
    conversation.handoff_at = datetime.now(UTC)
    conversation.human_review_requested = conversation.human_review_requested or human_review
    await session.flush()
    await publish(session, state_event(conversation))

    recipients = await session.execute(
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(
            Membership.organisation_id == conversation.organisation_id,
            Membership.role.in_((Role.OWNER, Role.ADMIN, Role.AGENT)),
        )
    )
    what = "a person to review an automated decision" if human_review else "a person"
    emails = list(recipients.scalars())
    for email in emails:
        await queue_email(
            session,
            to=email,
            subject="A customer is waiting for a person",
            body=(
                f"A customer on {conversation.channel.value} asked for {what}.\n"
                "The assistant has stopped answering this conversation until someone on "
                "your team takes it over.\n\n"
                f"Open it: {public_url}/inbox/{conversation.id}\n"
            ),
        )
    log.info(
        "conversation.handed_off",
        conversation_id=str(conversation.id),
        human_review=human_review,
        notified=len(emails),
    )


ERASED_CONFLICT = (
    "This customer's data was erased, so their conversations are closed for good: "
    "nothing can be sent to them here."
)
WINDOW_CLOSED_NEEDS_TEMPLATE = (
    "The customer last wrote more than 24 hours ago: WhatsApp only lets an approved "
    "template through now. Send one with `template`."
)


async def send_agent_message(
    scope: TenantScope,
    principal: Principal,
    conversation_id: uuid.UUID,
    *,
    text: str | None,
    template: Mapping[str, Any] | None,
) -> Message:
    """A person on the team writes to the customer. Writing takes the conversation over:
    the assistant stops answering it (policy §7, human oversight)."""
    if text is not None:
        text = message_text(
            text, limit=MAX_AGENT_TEXT, what="A reply", empty="Write your reply first."
        )
    conversation = await scope.get(Conversation, conversation_id, for_update=True)
    customer = await scope.get(Customer, conversation.customer_id)
    if conversation.state == ConversationState.CLOSED:
        raise Conflict(ERASED_CONFLICT if customer.erased else "This conversation is closed.")
    if customer.opted_out_at is not None:
        raise Conflict("The customer opted out (STOP); nothing can be sent until they write START.")
    window_open = may_send_free_form(conversation.channel, conversation.last_inbound_at)
    if not window_open and template is None:
        raise Conflict(WINDOW_CLOSED_NEEDS_TEMPLATE)

    if conversation.state in (ConversationState.BOT, ConversationState.WAITING_FOR_HUMAN):
        conversation.state = ConversationState.HUMAN
    if conversation.assigned_user_id is None and principal.user_id is not None:
        conversation.assigned_user_id = principal.user_id
    conversation.unread_count = 0
    await scope.session.flush()
    await publish(scope.session, state_event(conversation))
    return await queue_outbound(
        scope.session,
        conversation,
        sender=Sender.AGENT,
        type="template" if template is not None and text is None else "text",
        text=text if text is not None else f"[template {template['name']}]" if template else None,
        payload={"template": dict(template)} if template is not None else None,
        author_user_id=principal.user_id,
    )
