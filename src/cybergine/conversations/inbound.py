"""Recording what customers write, on every channel, by one rule.

The rule (the customer on first contact, their open conversation locked until commit,
the message once, the counters, the NOTIFY, the reply job) is the SQL function
``cybergine_record_inbound`` (``db/sql/record_inbound_<migration>.sql``), the same for a
message the web chat posts, a WhatsApp delivery the webhook stores in its own
transaction, and the batches its group commit writes (``cybergine_whatsapp_ingest``
calls it). Python adds only what SQL cannot do: deferring a media download through the
channel's adapter, and acting on a consent word (an opt-out is confirmed by a message,
which goes through ``queue_outbound`` like any other). A message with either takes
:func:`record_inbound`, which records it as a batch of one and then does both.

Channel-independent: a channel turns what it received into an :class:`InboundContent`
and calls this inside the transaction that stores its raw event. Never commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from procrastinate.jobs import DEFAULT_QUEUE
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.conversations import csat, intents
from cybergine.conversations.channel import adapter_for
from cybergine.conversations.locks import CONVERSATION_LOCK_PREFIX
from cybergine.conversations.message_types import SILENT_TYPES
from cybergine.conversations.models import Attachment, Channel, Conversation, Customer, Sender
from cybergine.conversations.service import queue_outbound
from cybergine.db.ids import uuid7
from cybergine.db.jsonb import jsonb_argument
from cybergine.job_names import JobName
from cybergine.observability.tracing import job_arguments
from cybergine.privacy.pseudonyms import erased_external_id
from cybergine.realtime.events import CHANNEL

OPT_OUT_CONFIRMATION = (
    "You won't receive any more messages from us. Reply START at any time to hear from us again."
)
OPT_IN_CONFIRMATION = "Welcome back! You'll receive our replies again. Reply STOP to opt out."

# What ``cybergine_record_inbound`` writes by name, given to it by the names Python uses,
# so that renaming one is a change here and never a new version of the function.
RECORD_NAMES: dict[str, str] = {
    "notify_channel": CHANNEL,
    "reply_task": JobName.REPLY.value,
    "reply_queue": DEFAULT_QUEUE,
    "reply_lock_prefix": CONVERSATION_LOCK_PREFIX,
}

# Message types whose text may be a consent word (a typed STOP, a tapped button).
_WORDED_TYPES = frozenset({"text", "button", "interactive"})

ConsentChange = Literal["opt_out", "opt_in"]  # as intents.detect_opt_change answers


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
    """What ``cybergine_record_inbound`` did with one message."""

    message_id: uuid.UUID | None  # None: a duplicate delivery, nothing was done
    conversation_id: uuid.UUID
    customer_id: uuid.UUID
    customer_opted_out: bool  # as the message found them
    reply_queued: bool

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Recorded:
        return cls(
            message_id=uuid.UUID(row["m"]) if row["m"] else None,
            conversation_id=uuid.UUID(row["c"]),
            customer_id=uuid.UUID(row["u"]),
            customer_opted_out=bool(row["out"]),
            reply_queued=bool(row["r"]),
        )


def consent_change(account: ChannelAccount, content: InboundContent) -> ConsentChange | None:
    """The consent a message gives or withdraws by its words, if any (policy §9)."""
    if not content.text or content.type not in _WORDED_TYPES:
        return None
    return intents.detect_opt_change(content.text, account.opt_out_words, account.opt_in_words)


def needs_python(account: ChannelAccount, content: InboundContent) -> bool:
    """Whether recording ``content`` takes more than the SQL function: a media file to
    fetch, or consent words to act on (:func:`record_inbound`)."""
    return content.media_id is not None or consent_change(account, content) is not None


def account_item(account: ChannelAccount) -> dict[str, Any]:
    """``account`` as ``cybergine_record_inbound`` takes it."""
    return {
        "org": str(account.organisation_id),
        "channel": account.channel.value,
        "number": str(account.whatsapp_number_id) if account.whatsapp_number_id else None,
        "assistant": str(account.assistant_id) if account.assistant_id else None,
    }


def message_item(
    account: ChannelAccount, customer: CustomerIdentity, content: InboundContent
) -> dict[str, Any]:
    """One message as ``cybergine_record_inbound`` takes it. Its ``id`` is a proposal
    (the function moves it above the conversation's newest) and the item's key in what
    the function returns."""
    return {
        "id": str(uuid7()),
        "customer_id": str(customer.id or uuid7()),
        "conversation_id": str(uuid7()),
        "customer": customer.external_id,
        "phone": customer.phone_number,
        "name": customer.display_name,
        "external_id": content.external_id,
        # What the id is stored as once its customer is erased: a delivery of it then
        # is a duplicate, not a new customer (policy §14).
        "erased_external_id": (
            erased_external_id(content.external_id) if content.external_id else None
        ),
        "type": content.type[:32],
        "text": content.text,
        "payload": dict(content.payload) if content.payload else None,
        "sent_at": content.sent_at.isoformat(),
        "context": content.context_external_id,
        # A consent word is answered by its confirmation, never by the assistant.
        # A chosen survey row is a rating, never a question.
        "answerable": content.type not in SILENT_TYPES
        and consent_change(account, content) is None
        and not csat.is_survey_choice(content.payload),
        # What its reply job carries besides the message's id: the trace context of the
        # request that received it, when traces are on (observability.tracing).
        "job_arguments": job_arguments(),
    }


async def record_inbound(
    session: AsyncSession,
    account: ChannelAccount,
    customer: CustomerIdentity,
    content: InboundContent,
) -> Recorded:
    """Store one inbound message and defer what it calls for (reply, media, consent)."""
    item = message_item(account, customer, content)
    rows: list[dict[str, Any]] = (
        await session.execute(
            select(
                func.cybergine_record_inbound(
                    jsonb_argument(account_item(account)),
                    jsonb_argument([item]),
                    jsonb_argument(RECORD_NAMES),
                    type_=JSONB,
                )
            )
        )
    ).scalar_one()
    recorded = Recorded.of(rows[0])
    await follow_up(session, account, recorded, content)
    return recorded


async def follow_up(
    session: AsyncSession, account: ChannelAccount, recorded: Recorded, content: InboundContent
) -> None:
    """What Python adds to a message the SQL function recorded, in the same transaction:
    its media download and its consent change. Nothing for a duplicate delivery."""
    if recorded.message_id is None:
        return
    if content.media_id is not None:
        attachment = Attachment(
            organisation_id=account.organisation_id,
            message_id=recorded.message_id,
            media_id=content.media_id[:200],
            mime_type=content.media_mime_type,
            filename=content.media_filename,
        )
        session.add(attachment)
        await session.flush()
        await adapter_for(account.channel).fetch_media(session, attachment.id)
    change = consent_change(account, content)
    if change is not None:
        await _change_consent(session, recorded, change)


def follow_ups(
    recorded: Iterable[Mapping[str, Any]],
    pending: Mapping[str, tuple[ChannelAccount, InboundContent]],
) -> list[tuple[ChannelAccount, Recorded, InboundContent]]:
    """The messages of a batch that need :func:`follow_up`, matched by their item key."""
    found = []
    for row in recorded:
        wanted = pending.get(row["k"])
        if wanted is not None:
            account, content = wanted
            found.append((account, Recorded.of(row), content))
    return found


async def _change_consent(session: AsyncSession, recorded: Recorded, change: ConsentChange) -> None:
    """Policy §9: an opt-out is confirmed once and then nothing more is sent; an opt-in
    is recorded with its time and source and confirmed."""
    now = func.now()
    if change == "opt_out":
        if recorded.customer_opted_out:
            return  # already out: no second confirmation
        values: dict[str, Any] = {"opted_out_at": now, "opt_out_source": "keyword"}
        confirmation = OPT_OUT_CONFIRMATION
    else:
        if not recorded.customer_opted_out:
            return  # never left: START is just a word; nothing to confirm
        values = {
            "opted_out_at": None,
            "opt_out_source": None,
            "opted_in_at": now,
            "opt_in_source": "keyword",
        }
        confirmation = OPT_IN_CONFIRMATION
    await session.execute(
        update(Customer).where(Customer.id == recorded.customer_id).values(**values)
    )
    # Locked already: the function holds the conversation's row until commit.
    # Read afresh: an object of it this session holds predates the function's write.
    conversation = await session.get_one(
        Conversation, recorded.conversation_id, populate_existing=True
    )
    await queue_outbound(
        session,
        conversation,
        sender=Sender.SYSTEM,
        type="text",
        text=confirmation,
        payload={"consent": change},
        reply_to_id=recorded.message_id,
    )
