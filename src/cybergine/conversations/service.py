"""Writing conversations: an inbound message with everything it sets in motion, outbound
messages queued for their channel, handoff to people, and consent changes.

Channel-independent: a channel adapter (the WhatsApp webhook, the web chat) turns what it
received into an :class:`InboundContent` and calls :func:`record_inbound` inside the
transaction that also stores its raw event; the jobs that answer, fetch media or send are
deferred in that same transaction, so a crash loses nothing and a duplicate delivery
(same external id) is recorded and answered once. Never commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import Membership, Role, User
from cybergine.accounts.principal import Principal
from cybergine.conversations import intents
from cybergine.conversations.channel import adapter_for, may_send_free_form
from cybergine.conversations.message_types import SILENT_TYPES
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
from cybergine.db.ids import uuid7
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

OPT_OUT_CONFIRMATION = (
    "You won't receive any more messages from us. Reply START at any time to hear from us again."
)
OPT_IN_CONFIRMATION = "Welcome back! You'll receive our replies again. Reply STOP to opt out."


@dataclass(frozen=True)
class CustomerIdentity:
    external_id: str  # WhatsApp: the wa_id; web chat: the visitor id
    phone_number: str | None = None
    display_name: str | None = None
    # Web chat knows a visitor's customer id before the row exists (it is derived from
    # the visitor token), so the widget can subscribe to it at once.
    id: uuid.UUID | None = None


@dataclass(frozen=True)
class InboundContent:
    external_id: str
    type: str
    text: str | None
    payload: Mapping[str, Any] | None
    sent_at: datetime
    context_external_id: str | None = None
    media_id: str | None = None
    media_mime_type: str | None = None
    media_filename: str | None = None


@dataclass(frozen=True)
class ChannelAccount:
    """Where the message arrived: the organisation, the channel, the account on it."""

    organisation_id: uuid.UUID
    channel: Channel
    assistant_id: uuid.UUID | None
    whatsapp_number_id: uuid.UUID | None = None
    opt_out_words: Sequence[str] = intents.DEFAULT_OPT_OUT_WORDS
    opt_in_words: Sequence[str] = intents.DEFAULT_OPT_IN_WORDS


@dataclass(frozen=True)
class Recorded:
    message_id: uuid.UUID | None  # None: a duplicate delivery, nothing was done
    conversation_id: uuid.UUID
    reply_queued: bool


async def record_inbound(
    session: AsyncSession,
    account: ChannelAccount,
    customer: CustomerIdentity,
    content: InboundContent,
) -> Recorded:
    """Store one inbound message and defer what it calls for (reply, media, consent)."""
    customer_row = await _upsert_customer(session, account, customer, content.sent_at)
    conversation = await _open_conversation(session, account, customer_row.id)

    # The id is the conversation's newest only once the message is stored: a duplicate
    # delivery inserts nothing and must leave ``last_message_id`` where it was.
    message_id = await _insert_inbound(
        session, account, conversation.id, message_id_after(conversation.last_message_id), content
    )
    if message_id is None:
        return Recorded(None, conversation.id, reply_queued=False)
    conversation.last_message_id = message_id

    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(
            last_inbound_at=func.greatest(Conversation.last_inbound_at, content.sent_at),
            last_message_at=func.now(),
            unread_count=Conversation.unread_count + 1,
        )
    )

    await publish(
        session,
        Event(
            account.organisation_id,
            conversation.id,
            "message",
            message_id,
            customer_id=customer_row.id,
        ),
    )
    if content.media_id is not None:
        await _queue_media(session, account, message_id, content)

    opt = (
        intents.detect_opt_change(content.text, account.opt_out_words, account.opt_in_words)
        if content.text and content.type in ("text", "button", "interactive")
        else None
    )
    if opt is not None:
        await _change_consent(session, account, customer_row, conversation, opt, message_id)
        return Recorded(message_id, conversation.id, reply_queued=False)

    answerable = (
        conversation.state == ConversationState.BOT
        and account.assistant_id is not None
        and customer_row.opted_out_at is None
        and content.type not in SILENT_TYPES
    )
    if answerable:
        await defer_reply(session, conversation.id, message_id)
    return Recorded(message_id, conversation.id, reply_queued=answerable)


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


def next_message_id(conversation: Conversation) -> uuid.UUID:
    """An id for a new message of ``conversation``, above every earlier one.

    Callers hold the conversation's row lock until they commit, so ids follow commit
    order within a conversation even when several processes write to it in the same
    millisecond (UUIDv7 orders by time only to the millisecond across processes). A
    client that has seen id X can then ask for "after X" and miss nothing.
    """
    candidate = message_id_after(conversation.last_message_id)
    conversation.last_message_id = candidate
    return candidate


def message_id_after(last: uuid.UUID | None) -> uuid.UUID:
    """A new message id above ``last`` (the conversation's newest), which it does not
    move: the caller does once the message is stored (``next_message_id``)."""
    candidate = uuid7()
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


# The lock of a conversation's jobs, also given to the SQL ingest (``whatsapp.ingest``).
CONVERSATION_LOCK_PREFIX = "conversation:"


def conversation_lock(conversation_id: uuid.UUID) -> str:
    """Jobs of one conversation run one at a time, in the order they were deferred."""
    return f"{CONVERSATION_LOCK_PREFIX}{conversation_id}"


def send_lock(conversation_id: uuid.UUID) -> str:
    """The delivery jobs of one conversation's messages, one at a time, in order."""
    return f"send:{conversation_id}"


async def _upsert_customer(
    session: AsyncSession, account: ChannelAccount, identity: CustomerIdentity, at: datetime
) -> Customer:
    values = insert(Customer).values(
        id=identity.id or uuid7(),
        organisation_id=account.organisation_id,
        channel=account.channel,
        external_id=identity.external_id,
        phone_number=identity.phone_number,
        display_name=identity.display_name,
        # Writing first is consent to be answered (WhatsApp's customer-initiated
        # conversation); marketing would need more and is never sent.
        opted_in_at=at,
        opt_in_source="customer_message",
    )
    statement = values.on_conflict_do_update(
        index_elements=["organisation_id", "channel", "external_id"],
        set_={
            "display_name": func.coalesce(values.excluded.display_name, Customer.display_name),
            "phone_number": func.coalesce(values.excluded.phone_number, Customer.phone_number),
        },
    ).returning(Customer)
    result = await session.execute(statement)
    return result.scalar_one()


async def _open_conversation(
    session: AsyncSession, account: ChannelAccount, customer_id: uuid.UUID
) -> Conversation:
    """The customer's open conversation on this account, started if there is none. Two
    deliveries racing to start one meet at the partial unique index; the loser reads."""
    query = (
        select(Conversation)
        .where(
            Conversation.organisation_id == account.organisation_id,
            Conversation.customer_id == customer_id,
            Conversation.whatsapp_number_id.is_not_distinct_from(account.whatsapp_number_id),
            Conversation.state != ConversationState.CLOSED,
        )
        .with_for_update()
    )
    for _ in range(3):
        found = (await session.execute(query)).scalar_one_or_none()
        if found is not None:
            return found
        created = await session.execute(
            insert(Conversation)
            .values(
                id=uuid7(),
                organisation_id=account.organisation_id,
                channel=account.channel,
                customer_id=customer_id,
                assistant_id=account.assistant_id,
                whatsapp_number_id=account.whatsapp_number_id,
                state=ConversationState.BOT,
                human_review_requested=False,
                unread_count=0,
            )
            .on_conflict_do_nothing()
            .returning(Conversation)
        )
        conversation = created.scalar_one_or_none()
        if conversation is not None:
            return conversation
    raise RuntimeError("could not open a conversation")  # pragma: no cover


async def _insert_inbound(
    session: AsyncSession,
    account: ChannelAccount,
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    content: InboundContent,
) -> uuid.UUID | None:
    statement = (
        insert(Message)
        .values(
            id=message_id,
            organisation_id=account.organisation_id,
            conversation_id=conversation_id,
            direction=Direction.INBOUND,
            sender=Sender.CUSTOMER,
            type=content.type[:32],
            text=content.text,
            payload=dict(content.payload) if content.payload else None,
            external_id=content.external_id,
            context_external_id=content.context_external_id,
            status=MessageStatus.RECEIVED,
            send_attempts=0,
            sent_at=content.sent_at,
        )
        .on_conflict_do_nothing(
            index_elements=["organisation_id", "external_id"],
            index_where=Message.external_id.is_not(None),
        )
        .returning(Message.id)
    )
    return await session.scalar(statement)


async def _queue_media(
    session: AsyncSession, account: ChannelAccount, message_id: uuid.UUID, content: InboundContent
) -> None:
    assert content.media_id is not None
    attachment = Attachment(
        organisation_id=account.organisation_id,
        message_id=message_id,
        media_id=content.media_id[:200],
        mime_type=content.media_mime_type,
        filename=content.media_filename,
    )
    session.add(attachment)
    await session.flush()
    await adapter_for(account.channel).fetch_media(session, attachment.id)


async def _change_consent(
    session: AsyncSession,
    account: ChannelAccount,
    customer: Customer,
    conversation: Conversation,
    change: str,
    message_id: uuid.UUID,
) -> None:
    """Policy §9: an opt-out is confirmed once and then nothing more is sent; an opt-in
    is recorded with its time and source and confirmed."""
    now = func.now()
    if change == "opt_out":
        if customer.opted_out_at is not None:
            return  # already out: no second confirmation
        await session.execute(
            update(Customer)
            .where(Customer.id == customer.id)
            .values(opted_out_at=now, opt_out_source="keyword")
        )
        text = OPT_OUT_CONFIRMATION
    else:
        if customer.opted_out_at is None:
            return  # never left: START is just a word; nothing to confirm
        await session.execute(
            update(Customer)
            .where(Customer.id == customer.id)
            .values(
                opted_out_at=None, opt_out_source=None, opted_in_at=now, opt_in_source="keyword"
            )
        )
        text = OPT_IN_CONFIRMATION
    await queue_outbound(
        session,
        conversation,
        sender=Sender.SYSTEM,
        type="text",
        text=text,
        payload={"consent": change},
        reply_to_id=message_id,
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
    sources: list[dict[str, Any]] | None = None,
    grounded: bool | None = None,
    llm_provider: str | None = None,
    llm_model: str | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
) -> Message:
    """An outbound message, queued, with its delivery job deferred in this transaction
    (or, on a channel that delivers by storing, sent)."""
    adapter = adapter_for(conversation.channel)
    message = Message(
        id=next_message_id(conversation),
        organisation_id=conversation.organisation_id,
        conversation_id=conversation.id,
        direction=Direction.OUTBOUND,
        sender=sender,
        author_user_id=author_user_id,
        type=type,
        text=text,
        payload=dict(payload) if payload else None,
        # Web chat delivers by storing: the visitor's socket reads it from here.
        status=MessageStatus.SENT if adapter.delivers_by_storing else MessageStatus.QUEUED,
        sent_at=datetime.now(UTC) if adapter.delivers_by_storing else None,
        reply_to_id=reply_to_id,
        sources=sources,
        grounded=grounded,
        llm_provider=llm_provider,
        llm_model=llm_model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        send_attempts=0,
    )
    session.add(message)
    await session.flush()
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(last_message_at=func.now())
    )
    await publish(
        session,
        Event(
            conversation.organisation_id,
            conversation.id,
            "message",
            message.id,
            customer_id=conversation.customer_id,
        ),
    )
    await adapter.deliver(session, conversation.id, message.id)
    return message


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
