"""Sending queued messages through the Graph API, and fetching customers' media.

Sending one message:

1. Claim (a short transaction): the message moves ``queued → sending`` unless a rule
   forbids the send: the organisation is in its deletion grace period (policy §11), the
   customer opted out (only the platform's own opt-out and opt-in confirmations still
   go), the number was disconnected, or the 24-hour customer-service
   window is closed and the message is not an approved template. A forbidden send fails
   at once with the reason, so an agent sees why.
2. Wait for a slot of the number's send rate (a clock shared by every worker).
3. Call the Graph API, part by part for text over 4,096 characters, recording each
   accepted part so that a retry resumes after it.
4. Record the outcome; what Meta accepted is written down even across a database restart
   (waited out for up to ``RECORD_PATIENCE_SECONDS``). A retryable error puts the message
   back to ``queued`` and the job runs again later (after Meta's Retry-After when it gave
   one); anything else, or the last attempt, marks it ``failed`` with Meta's code and
   message.

A worker killed between Meta's acceptance and step 4 leaves the message ``sending``. Its
status webhook, which echoes our message id in ``biz_opaque_callback_data``, usually
settles it within seconds; the retry waits ``RECONCILE_SECONDS`` for that before sending
again, so the one way left to a duplicate is a crash in that instant *and* a lost status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import String, bindparam, cast, func, select, text, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.grace import accepting as organisation_accepting
from cybergine.accounts.models import Organisation
from cybergine.channels.whatsapp import messages as bodies
from cybergine.channels.whatsapp.graph import GraphClient, GraphError, MediaTooLarge
from cybergine.channels.whatsapp.health import record_error
from cybergine.channels.whatsapp.models import WhatsAppNumber
from cybergine.channels.whatsapp.product_messages import product_bodies
from cybergine.channels.whatsapp.window import window_open as service_window_open
from cybergine.conversations.models import (
    Attachment,
    AttachmentStatus,
    Conversation,
    Customer,
    Message,
    MessageStatus,
    Sender,
)
from cybergine.conversations.product_cards import cards_of
from cybergine.db.engine import Database
from cybergine.observability import tracing
from cybergine.queue import RetryLater
from cybergine.settings import Settings

log = structlog.get_logger(__name__)

RECONCILE_SECONDS = 20.0
# Meta has accepted a message: until that is written down, a retry would send it again.
# A database away for a moment (a restart, a fail-over) is waited for this long before
# the job gives up and leaves the message to the retry's reconciliation.
RECORD_PATIENCE_SECONDS = 60.0
_RECORD_FIRST_WAIT = 0.2
_RECORD_LONGEST_WAIT = 5.0

OPTED_OUT = "The customer opted out (STOP); nothing is sent until they write START."
WINDOW_CLOSED = (
    "Outside WhatsApp's 24-hour customer-service window: the customer last wrote more than "
    "24 hours ago, and only an approved template can be sent now."
)
DISCONNECTED = "This conversation's WhatsApp number is no longer connected."
CLOSING = (
    "Not sent: the organisation is scheduled for deletion (or its Shopify shop uninstalled "
    "the app), and its channels send nothing until that is cancelled."
)

# Meta's supported media types (Cloud API "Supported media types").
ACCEPTED_MEDIA: dict[str, frozenset[str]] = {
    "image": frozenset({"image/jpeg", "image/png"}),
    "sticker": frozenset({"image/webp"}),
    "audio": frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
    "video": frozenset({"video/mp4", "video/3gpp"}),
    "document": frozenset(
        {
            "text/plain",
            "application/pdf",
            "application/msword",
            "application/vnd.ms-excel",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        }
    ),
}


_graph_clients: dict[str, GraphClient] = {}


def graph_client(base_url: str) -> GraphClient:
    """One client per Graph URL in this process, for connection reuse."""
    client = _graph_clients.get(base_url)
    if client is None:
        client = _graph_clients[base_url] = GraphClient(base_url=base_url)
    return client


async def close_graph_clients() -> None:
    """Close the Graph API connections this process holds (a worker stopping)."""
    for client in list(_graph_clients.values()):
        await client.aclose()


@dataclass(frozen=True)
class Claim:
    """A message claimed for sending (``sending``), with all it takes to send it."""

    number_id: uuid.UUID
    phone_number_id: str
    access_token: str
    send_rate: float
    bodies: list[dict[str, Any]]
    parts_sent: int
    mark_read: str | None  # the customer message this replies to, to mark read first
    first_slot_wait: float | None  # seconds until the rate limit lets the first part go


async def send(
    database: Database,
    settings: Settings,
    message_id: uuid.UUID,
    *,
    last_attempt: bool,
    client: GraphClient | None = None,
) -> str:
    graph = client or graph_client(settings.whatsapp_graph_url)
    claim = await _claim(database, settings, message_id)
    if isinstance(claim, str):
        return claim
    return await deliver(database, graph, message_id, claim, last_attempt=last_attempt)


async def deliver(
    database: Database,
    graph: GraphClient,
    message_id: uuid.UUID,
    claim: Claim,
    *,
    last_attempt: bool,
) -> str:
    """Steps 2 to 4 for a claimed message. Raises :class:`RetryLater` after putting the
    message back to ``queued`` when Meta asks to try again later."""
    with tracing.span(
        "send whatsapp",
        attributes={"messaging.system": "whatsapp", "cybergine.message.parts": len(claim.bodies)},
    ):
        return await _deliver(database, graph, message_id, claim, last_attempt=last_attempt)


async def _deliver(
    database: Database,
    graph: GraphClient,
    message_id: uuid.UUID,
    claim: Claim,
    *,
    last_attempt: bool,
) -> str:
    if claim.mark_read is not None:
        try:
            await graph.mark_read(claim.phone_number_id, claim.access_token, claim.mark_read)
        except GraphError as error:  # a missing blue tick is not worth a failed reply
            log.info("whatsapp.mark_read_failed", error=str(error))

    wamid: str | None = None
    for index in range(claim.parts_sent, len(claim.bodies)):
        if index == claim.parts_sent:
            await _sleep(claim.first_slot_wait)  # the claim took the first slot
        else:
            await _wait_for_slot(database, claim.number_id, claim.send_rate)
        try:
            wamid = await graph.send(claim.phone_number_id, claim.access_token, claim.bodies[index])
        except GraphError as error:
            return await _failed_send(database, message_id, error, last_attempt=last_attempt)
        if index < len(claim.bodies) - 1:
            await _accepted(functools.partial(_record_part, database, message_id, index + 1, wamid))

    assert wamid is not None
    await _accepted(functools.partial(_record_sent, database, message_id, wamid))
    return "sent"


async def _record_sent(database: Database, message_id: uuid.UUID, wamid: str) -> None:
    async with database.autocommit() as session:  # one statement
        await session.execute(_SENT, {"p_id": message_id, "p_wamid": wamid})


async def _accepted(write: Callable[[], Awaitable[None]]) -> None:
    """Write what Meta accepted, waiting out a database that is away (its connections
    cut, or refused) for up to ``RECORD_PATIENCE_SECONDS``: the send cannot be taken back,
    and a job failed here would leave the message ``sending``, sent again after
    ``RECONCILE_SECONDS`` if its status webhook was lost in the same outage."""
    deadline = time.monotonic() + RECORD_PATIENCE_SECONDS
    wait = _RECORD_FIRST_WAIT
    while True:
        try:
            await write()
            return
        except (OperationalError, InterfaceError, PoolTimeout) as error:
            if time.monotonic() + wait > deadline:
                raise
            log.warning("whatsapp.record_waits", error=type(error).__name__, retry_in=wait)
        await asyncio.sleep(wait)
        wait = min(wait * 2, _RECORD_LONGEST_WAIT)


# Built once: one per send. Parameters are named p_*: SQLAlchemy would take one named after
# a column as a value to set. A status webhook may have moved the message on already: the
# status only goes forward.
_SENT = (
    update(Message)
    .where(Message.id == bindparam("p_id"))
    .values(
        status=func.greatest(Message.status, cast(MessageStatus.SENT.value, Message.status.type)),
        external_id=func.coalesce(Message.external_id, bindparam("p_wamid", type_=String)),
        sent_at=func.coalesce(Message.sent_at, func.now()),
        error_code=None,
        error_title=None,
        error_detail=None,
    )
    .execution_options(synchronize_session=False)
)


async def _claim(database: Database, settings: Settings, message_id: uuid.UUID) -> Claim | str:
    async with database.transaction() as session:
        message = await session.get(Message, message_id, with_for_update=True)
        if message is None:
            return "gone"
        if message.status not in (MessageStatus.QUEUED, MessageStatus.SENDING):
            return "already_settled"
        now = datetime.now(UTC)
        if (
            message.status == MessageStatus.SENDING
            and message.send_started_at is not None
            and now - message.send_started_at < timedelta(seconds=RECONCILE_SECONDS)
        ):
            raise RetryLater(
                "an earlier attempt may have been accepted; waiting for its status webhook",
                seconds=RECONCILE_SECONDS,
            )
        conversation = await session.get(Conversation, message.conversation_id)
        assert conversation is not None
        customer = await session.get(Customer, conversation.customer_id)
        number = (
            await session.get(WhatsAppNumber, conversation.whatsapp_number_id)
            if conversation.whatsapp_number_id is not None
            else None
        )
        assert customer is not None
        refusal: str | None = None
        # Policy §11: nothing goes out during an organisation's deletion grace period, not
        # even a message queued before the deletion was scheduled.
        status = await session.scalar(
            select(Organisation.status).where(Organisation.id == message.organisation_id)
        )
        if status is not None and not organisation_accepting(status):
            refusal = CLOSING
        elif number is None or not number.active:
            refusal = DISCONNECTED
        elif customer.opted_out_at is not None and message.sender != Sender.SYSTEM:
            refusal = OPTED_OUT
        template = (message.payload or {}).get("template")
        window_open = service_window_open(conversation.last_inbound_at, now=now)
        if refusal is None and not window_open and not template:
            refusal = WINDOW_CLOSED
        if refusal is not None:
            _fail(message, refusal)
            return "refused"
        assert number is not None
        parts_sent = int((message.payload or {}).get("parts_sent", 0))
        reply_to = await session.get(Message, message.reply_to_id) if message.reply_to_id else None
        # The reply pipeline marks the customer's message read (with a typing indicator)
        # when it starts on it; what it has marked is not marked again.
        unread = reply_to is not None and reply_to.status == MessageStatus.RECEIVED
        if unread and message.send_attempts == 0:
            assert reply_to is not None
            reply_to.status = MessageStatus.READ
        claim = Claim(
            number_id=number.id,
            phone_number_id=number.phone_number_id,
            access_token=number.access_token,
            send_rate=number.send_rate or settings.whatsapp_send_rate,
            bodies=bodies_of(
                message.id,
                message.type,
                message.text,
                message.payload,
                to=customer.external_id,
                use_template=not window_open,
            ),
            parts_sent=parts_sent,
            mark_read=reply_to.external_id
            if reply_to is not None and unread and message.send_attempts == 0
            else None,
            first_slot_wait=None,
        )
        message.status = MessageStatus.SENDING
        message.send_started_at = now
        message.send_attempts += 1
        wait = await _take_slot(session, number.id, claim.send_rate)
    return dataclasses.replace(claim, first_slot_wait=wait)


def bodies_of(
    message_id: uuid.UUID,
    type: str,
    text: str | None,
    payload: dict[str, Any] | None,
    *,
    to: str,
    use_template: bool = False,
) -> list[dict[str, Any]]:
    """The Graph API request bodies of one message, in sending order."""
    payload = payload or {}
    callback = str(message_id)
    template = payload.get("template")
    if use_template or (type == "template" and template):
        assert isinstance(template, dict)
        return [
            bodies.template_body(
                to,
                str(template["name"]),
                str(template.get("language") or "en"),
                template.get("components"),
                callback_data=callback,
            )
        ]
    text = text or ""
    cards = cards_of(payload)
    if cards:
        language = payload.get("language")
        return product_bodies(
            to,
            text,
            cards,
            callback_data=callback,
            language=language if isinstance(language, str) else None,
        )
    buttons = payload.get("buttons")
    if buttons and len(text) <= bodies.BUTTON_BODY_LIMIT:
        return [
            bodies.buttons_body(
                to,
                text,
                [(str(b["id"]), str(b["title"])) for b in buttons],
                callback_data=callback,
            )
        ]
    choices = payload.get("list")
    if isinstance(choices, dict) and len(text) <= bodies.LIST_BODY_LIMIT:
        return [
            bodies.list_body(
                to,
                text,
                str(choices["button"]),
                [
                    (
                        str(section.get("title") or ""),
                        [
                            (str(row["id"]), str(row["title"]), row.get("description"))
                            for row in section["rows"]
                        ],
                    )
                    for section in choices["sections"]
                ],
                callback_data=callback,
            )
        ]
    return [bodies.text_body(to, part, callback_data=callback) for part in bodies.split_text(text)]


def _fail(
    message: Message, reason: str, *, code: int | None = None, detail: str | None = None
) -> None:
    message.status = MessageStatus.FAILED
    message.failed_at = datetime.now(UTC)
    message.error_code = code
    message.error_title = reason[:300]
    message.error_detail = detail


async def _failed_send(
    database: Database, message_id: uuid.UUID, error: GraphError, *, last_attempt: bool
) -> str:
    async with database.transaction() as session:
        message = await session.get(Message, message_id, with_for_update=True)
        if message is None:
            return "gone"
        if error.retryable and not last_attempt:
            message.status = MessageStatus.QUEUED
            message.error_code = error.code
            message.error_title = error.title[:300]
            message.error_detail = error.details
        else:
            reason = WINDOW_CLOSED if error.window_closed else error.title
            _fail(message, reason, code=error.code, detail=error.details)
            if not error.window_closed:  # a closed window is the customer's silence
                conversation = await session.get(Conversation, message.conversation_id)
                if conversation is not None and conversation.whatsapp_number_id is not None:
                    await record_error(
                        session,
                        [conversation.whatsapp_number_id],
                        f"A message could not be sent: {_number_error(error)}",
                    )
    if error.retryable and not last_attempt:
        raise RetryLater(str(error), seconds=error.retry_after)
    log.warning("whatsapp.send_failed", message_id=str(message_id), error=str(error))
    return "failed"


def _number_error(error: GraphError) -> str:
    """Meta's words for a failed send, as the number's page shows them: the message is
    redacted of what we sent (``graph.py``); the code helps a search of Meta's docs."""
    return error.title + (f" (code {error.code})" if error.code is not None else "")


async def _record_part(
    database: Database, message_id: uuid.UUID, parts_sent: int, wamid: str
) -> None:
    async with database.transaction() as session:
        message = await session.get(Message, message_id, with_for_update=True)
        if message is not None:
            payload = dict(message.payload or {})
            payload["parts_sent"] = parts_sent
            payload.setdefault("part_ids", []).append(wamid)
            message.payload = payload


_SLOT = text(
    """
    UPDATE whatsapp_numbers
       SET next_send_at = greatest(next_send_at, clock_timestamp()) + make_interval(secs => :step)
     WHERE id = :id
    RETURNING extract(epoch FROM next_send_at - make_interval(secs => :step) - clock_timestamp())
    """
)


async def _take_slot(session: AsyncSession, number_id: uuid.UUID, rate: float) -> float | None:
    """Per-number rate limit: each send takes the next ``1/rate`` s slot of a clock kept in
    the number's row, so all workers together stay within the rate. Returns the seconds
    to wait for it."""
    wait = await session.scalar(_SLOT, {"step": 1.0 / rate, "id": number_id})
    return float(wait) if wait is not None else None


async def _wait_for_slot(database: Database, number_id: uuid.UUID, rate: float) -> None:
    async with database.autocommit() as session:
        wait = await _take_slot(session, number_id, rate)
    await _sleep(wait)


async def _sleep(seconds: float | None) -> None:
    if seconds is not None and seconds > 0:
        await asyncio.sleep(seconds)


# --- Inbound media ----------------------------------------------------------------------


async def fetch_media(
    database: Database,
    settings: Settings,
    attachment_id: uuid.UUID,
    *,
    last_attempt: bool,
    client: GraphClient | None = None,
) -> str:
    graph = client or graph_client(settings.whatsapp_graph_url)
    async with database.transaction() as session:
        attachment = await session.get(Attachment, attachment_id)
        if attachment is None or attachment.status != AttachmentStatus.PENDING:
            return "settled"
        message = await session.get(Message, attachment.message_id)
        assert message is not None
        conversation = await session.get(Conversation, message.conversation_id)
        assert conversation is not None
        number = (
            await session.get(WhatsAppNumber, conversation.whatsapp_number_id)
            if conversation.whatsapp_number_id
            else None
        )
        if number is None:
            attachment.status = AttachmentStatus.FAILED
            attachment.error = DISCONNECTED
            return "failed"
        media_id, kind, token = attachment.media_id, message.type, number.access_token
    accepted = ACCEPTED_MEDIA.get(kind, frozenset())

    status, error, data, info = AttachmentStatus.STORED, None, None, None
    try:
        info = await graph.media_info(media_id, token)
        mime = info.mime_type.split(";")[0].strip().lower()
        if mime not in accepted:
            status, error = AttachmentStatus.REJECTED, f"{mime} is not an accepted {kind} type."
        elif info.file_size is not None and info.file_size > settings.whatsapp_max_media_bytes:
            status, error = AttachmentStatus.REJECTED, _too_large(settings)
        else:
            data = await graph.download(
                info.url, token, max_bytes=settings.whatsapp_max_media_bytes
            )
    except MediaTooLarge:
        status, error = AttachmentStatus.REJECTED, _too_large(settings)
    except GraphError as failure:
        if failure.retryable and not last_attempt:
            raise RetryLater(str(failure), seconds=failure.retry_after) from None
        status, error = AttachmentStatus.FAILED, failure.title[:1000]

    if data is not None and info is not None and info.sha256:
        digest = hashlib.sha256(data).hexdigest()
        if digest != info.sha256.lower():
            status, error, data = (
                AttachmentStatus.FAILED,
                "The file's SHA-256 does not match.",
                None,
            )

    async with database.transaction() as session:
        attachment = await session.get(Attachment, attachment_id, with_for_update=True)
        if attachment is None:
            return "gone"
        attachment.status = status
        attachment.error = error
        if info is not None:
            attachment.mime_type = info.mime_type[:100]
        if data is not None:
            attachment.data = data
            attachment.size_bytes = len(data)
            attachment.sha256 = hashlib.sha256(data).hexdigest()
    return status.value


def _too_large(settings: Settings) -> str:
    return f"The file is larger than {settings.whatsapp_max_media_bytes} bytes."
