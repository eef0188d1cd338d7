"""From a verified webhook delivery to stored events, messages, status changes and jobs.

Routing is by ``metadata.phone_number_id``. One delivery may carry changes for numbers of
several organisations (every number of a Meta app shares its webhook), so each change is
stored with the organisation of its own number, and a number whose app secret does not
verify the signature gets nothing from the delivery.

:class:`NumberDirectory` keeps the routing data (organisation, assistant, decrypted app
secret) of recently seen numbers for a few seconds: at a thousand deliveries a second the
lookup would otherwise be the hottest query of the platform. A number changed through the
API is dropped from the directory of the process that changed it at once, and from the
others within ``ttl_seconds``. The body is read before its signature can be checked (the
number it names says which secret signs it), so the directory keeps only numbers that
exist and whose signature verified, at most ``capacity`` of them: ids sent by anyone else
cost a query, never memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from procrastinate.jobs import DEFAULT_QUEUE
from sqlalchemy import String, any_, bindparam, cast, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.bounded_cache import BoundedCache
from cybergine.channels.whatsapp.models import (
    PHONE_NUMBER_ID_LENGTH,
    WebhookEvent,
    WhatsAppNumber,
)
from cybergine.channels.whatsapp.payloads import (
    InboundMessage,
    StatusUpdate,
    WebhookBatch,
    parse_webhook,
)
from cybergine.channels.whatsapp.signature import verify_signature
from cybergine.conversations import intents
from cybergine.conversations.message_types import SILENT_TYPES
from cybergine.conversations.models import Channel, Direction, Message, MessageStatus
from cybergine.conversations.service import (
    CONVERSATION_LOCK_PREFIX,
    ChannelAccount,
    CustomerIdentity,
    InboundContent,
    record_inbound,
)
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from cybergine.job_names import JobName
from cybergine.realtime.events import CHANNEL, Event, publish

log = structlog.get_logger(__name__)

_STATUS_ORDER = {s.value: s for s in MessageStatus}


@dataclass(frozen=True)
class NumberRoute:
    id: uuid.UUID
    organisation_id: uuid.UUID
    assistant_id: uuid.UUID | None
    phone_number_id: str
    app_secret: str | None  # the number's own, else the platform default; None: none set
    opt_out_words: tuple[str, ...]
    opt_in_words: tuple[str, ...]
    active: bool

    def account(self) -> ChannelAccount:
        return ChannelAccount(
            organisation_id=self.organisation_id,
            channel=Channel.WHATSAPP,
            assistant_id=self.assistant_id,
            whatsapp_number_id=self.id,
            opt_out_words=self.opt_out_words,
            opt_in_words=self.opt_in_words,
        )


DIRECTORY_CAPACITY = 4096


class NumberDirectory:
    def __init__(
        self,
        database: Database,
        *,
        default_app_secret: str | None,
        ttl_seconds: float = 5.0,
        capacity: int = DIRECTORY_CAPACITY,
    ) -> None:
        self._database = database
        self._default_app_secret = default_app_secret
        # Only numbers that exist and whose signature verified (see ``remember``).
        self._routes: BoundedCache[str, NumberRoute] = BoundedCache(
            capacity=capacity, ttl_seconds=ttl_seconds
        )

    @property
    def default_app_secret(self) -> str | None:
        return self._default_app_secret

    def __len__(self) -> int:
        return len(self._routes)

    def forget(self, phone_number_id: str) -> None:
        self._routes.pop(phone_number_id)

    async def lookup(self, phone_number_ids: Iterable[str]) -> dict[str, NumberRoute]:
        """The numbers among ``phone_number_ids`` that exist; caches nothing (see
        :meth:`remember`)."""
        found: dict[str, NumberRoute] = {}
        missing: list[str] = []
        for phone_number_id in set(phone_number_ids):
            if len(phone_number_id) > PHONE_NUMBER_ID_LENGTH:
                continue  # longer than the column: no number has it
            route = self._routes.get(phone_number_id)
            if route is not None:
                found[phone_number_id] = route
            else:
                missing.append(phone_number_id)
        if missing:
            # One array parameter, not one parameter per id: a body may name thousands.
            ids = bindparam("ids", missing, type_=ARRAY(String()))
            async with self._database.transaction() as session:
                rows = await session.execute(
                    select(WhatsAppNumber).where(WhatsAppNumber.phone_number_id == any_(ids))
                )
                for number in rows.scalars():
                    found[number.phone_number_id] = self._route(number)
        return found

    def remember(self, routes: Mapping[str, NumberRoute]) -> None:
        """Keep the numbers a delivery's signature verified for, for a few seconds."""
        for phone_number_id, route in routes.items():
            self._routes.put(phone_number_id, route)

    def _route(self, number: WhatsAppNumber) -> NumberRoute:
        return NumberRoute(
            id=number.id,
            organisation_id=number.organisation_id,
            assistant_id=number.assistant_id,
            phone_number_id=number.phone_number_id,
            app_secret=number.app_secret or self._default_app_secret,
            opt_out_words=(*intents.DEFAULT_OPT_OUT_WORDS, *number.opt_out_keywords),
            opt_in_words=(*intents.DEFAULT_OPT_IN_WORDS, *number.opt_in_keywords),
            active=number.active,
        )


def phone_number_ids(body: Mapping[str, Any]) -> set[str]:
    """Every ``metadata.phone_number_id`` in a delivery (pure; tolerant of bad shapes)."""
    found: set[str] = set()
    for _, value in _changes(body):
        metadata = value.get("metadata")
        if isinstance(metadata, Mapping) and isinstance(metadata.get("phone_number_id"), str):
            found.add(metadata["phone_number_id"])
    return found


def _changes(body: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    entries = body.get("entry")
    for entry in entries if isinstance(entries, list) else ():
        changes = entry.get("changes") if isinstance(entry, Mapping) else None
        for change in changes if isinstance(changes, list) else ():
            if isinstance(change, Mapping) and isinstance(change.get("value"), Mapping):
                field = change.get("field")
                yield (field if isinstance(field, str) else "unknown"), change["value"]


def _routed_changes(
    body: Mapping[str, Any], routes: Mapping[str, NumberRoute]
) -> Iterator[tuple[str, Mapping[str, Any], NumberRoute, WebhookBatch]]:
    """Each change addressed to one of ``routes``, with its number and what it holds;
    changes for other numbers are left out."""
    for field, value in _changes(body):
        metadata = value.get("metadata")
        phone_number_id = metadata.get("phone_number_id") if isinstance(metadata, Mapping) else None
        route = routes.get(phone_number_id) if isinstance(phone_number_id, str) else None
        if route is not None:
            batch = parse_webhook(
                {
                    "object": "whatsapp_business_account",
                    "entry": [{"changes": [{"field": field, "value": value}]}],
                }
            )
            yield field, value, route, batch


def verified_routes(
    routes: Mapping[str, NumberRoute], raw_body: bytes, signature: str | None
) -> dict[str, NumberRoute]:
    """The numbers whose app secret verifies this body's signature."""
    verdicts: dict[str, bool] = {}
    accepted: dict[str, NumberRoute] = {}
    for phone_number_id, route in routes.items():
        secret = route.app_secret
        if not secret:
            continue
        if secret not in verdicts:
            verdicts[secret] = verify_signature(raw_body, signature, secret)
        if verdicts[secret]:
            accepted[phone_number_id] = route
    return accepted


@dataclass
class IngestResult:
    events: int = 0
    messages: int = 0
    duplicates: int = 0
    statuses: int = 0
    problems: int = 0


def kept_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """A change as its event row keeps it: without the recipients of its statuses. The
    message a status updates already says who received it; and a status can come after
    its customer was erased (policy §14), or concern someone who is no customer here
    (a message sent by another app on the same number)."""
    kept = dict(value)
    statuses = value.get("statuses")
    if isinstance(statuses, list):
        kept["statuses"] = [
            {k: v for k, v in status.items() if not k.startswith("recipient")}
            if isinstance(status, Mapping)
            else status
            for status in statuses
        ]
    return kept


async def store_delivery(
    session: AsyncSession, body: Mapping[str, Any], routes: Mapping[str, NumberRoute]
) -> IngestResult:
    """Store what ``routes`` (verified, known numbers) received, in the caller's
    transaction: one event row per change, the messages, the status changes, the jobs."""
    result = IngestResult()
    for field, value, route, batch in _routed_changes(body, routes):
        session.add(
            WebhookEvent(
                organisation_id=route.organisation_id,
                whatsapp_number_id=route.id,
                field=field[:64],
                value=kept_value(value),
                messages=len(batch.messages),
                statuses=len(batch.statuses),
                problems="\n".join(batch.problems)[:4000] or None,
            )
        )
        result.events += 1
        result.problems += len(batch.problems)
        if not route.active:
            continue  # kept as an event, but a paused number starts nothing
        for message in batch.messages:
            recorded = await record_inbound(
                session, route.account(), _customer(message), _content(message)
            )
            if recorded.message_id is None:
                result.duplicates += 1
            else:
                result.messages += 1
        for status in batch.statuses:
            result.statuses += await apply_status(session, route.organisation_id, status)
    return result


# What the SQL ingest understands; anything else (media to fetch, consent words to act
# on) takes the Python path below, which handles every case.
_LIFECYCLE = frozenset({"sent", "delivered", "read", "failed"})

# What ``cybergine_whatsapp_ingest`` writes by name, given to it by the names Python uses,
# so that renaming one is a change here and never a new version of the function.
INGEST_NAMES: dict[str, str] = {
    "channel": CHANNEL,
    "reply_task": JobName.REPLY.value,
    "reply_queue": DEFAULT_QUEUE,
    "reply_lock_prefix": CONVERSATION_LOCK_PREFIX,
}


def fast_items(
    body: Mapping[str, Any], routes: Mapping[str, NumberRoute]
) -> list[dict[str, Any]] | None:
    """The delivery as items of ``cybergine_whatsapp_ingest`` (``db/sql``, called with
    :data:`INGEST_NAMES`), or None when part of it needs the Python path."""
    items: list[dict[str, Any]] = []
    for field, value, route, batch in _routed_changes(body, routes):
        messages = []
        for message in batch.messages:
            if message.media is not None:
                return None
            if (
                message.text
                and message.type in ("text", "button", "interactive")
                and intents.detect_opt_change(message.text, route.opt_out_words, route.opt_in_words)
            ):
                return None
            content, customer = _content(message), _customer(message)
            messages.append(
                {
                    "id": str(uuid7()),
                    "customer_id": str(uuid7()),
                    "conversation_id": str(uuid7()),
                    "wa_id": customer.external_id,
                    "phone": customer.phone_number,
                    "name": customer.display_name,
                    "external_id": content.external_id,
                    "type": content.type[:32],
                    "text": content.text,
                    "payload": dict(content.payload) if content.payload else None,
                    "sent_at": content.sent_at.isoformat(),
                    "context": content.context_external_id,
                    "answerable": content.type not in SILENT_TYPES,
                }
            )
        statuses = []
        for status in batch.statuses:
            if status.status not in _LIFECYCLE:
                continue
            callback = _uuid(status.raw.get("biz_opaque_callback_data"))
            error = status.errors[0] if status.errors else None
            statuses.append(
                {
                    "wamid": status.message_id,
                    "status": status.status,
                    "at": status.timestamp.isoformat(),
                    "callback": str(callback) if callback else None,
                    "error_code": error.code if error else None,
                    "error_title": (error.title or error.message or "")[:300] if error else None,
                    "error_detail": error.details if error else None,
                }
            )
        items.append(
            {
                "lock_key": f"{route.id}:{messages[0]['wa_id'] if messages else ''}",
                "event_id": str(uuid7()),
                "org": str(route.organisation_id),
                "number": str(route.id),
                "assistant": str(route.assistant_id) if route.assistant_id else None,
                "active": route.active,
                "field": field[:64],
                "value": kept_value(value),
                "problems": "\n".join(batch.problems)[:4000] or None,
                "messages": messages,
                "statuses": statuses,
                # Counted on the event row as the Python path counts: every status Meta
                # sent, a voice message's "played" too, though only lifecycle ones apply.
                "statuses_received": len(batch.statuses),
            }
        )
    return items


def _customer(message: InboundMessage) -> CustomerIdentity:
    return CustomerIdentity(
        external_id=message.from_wa_id,
        phone_number=f"+{message.from_wa_id}" if message.from_wa_id.isdigit() else None,
        display_name=message.profile_name[:200] if message.profile_name else None,
    )


def _content(message: InboundMessage) -> InboundContent:
    payload: dict[str, Any] = {}
    detail = message.raw.get(message.type)
    if isinstance(detail, Mapping) and message.type != "text":
        payload[message.type] = dict(detail)
    if message.interactive_id is not None:
        payload["choice_id"] = message.interactive_id
    if message.reaction_to is not None:
        payload["reaction_to"] = message.reaction_to
    if message.errors:
        payload["errors"] = [
            {"code": e.code, "title": e.title, "message": e.message} for e in message.errors
        ]
    media = message.media
    return InboundContent(
        external_id=message.message_id,
        type=message.type,
        text=message.text,
        payload=payload or None,
        sent_at=message.timestamp,
        context_external_id=message.context_message_id,
        media_id=media.id if media else None,
        media_mime_type=media.mime_type if media else None,
        media_filename=media.filename if media else None,
    )


async def apply_status(
    session: AsyncSession, organisation_id: uuid.UUID, status: StatusUpdate
) -> int:
    """Move an outbound message forward in its lifecycle; never backwards (deliveries
    arrive out of order, and "read" may come before "delivered"). Matched by Meta's id,
    or by our id echoed in ``biz_opaque_callback_data`` when the status overtakes the
    commit of the send that produced it."""
    new = _STATUS_ORDER.get(status.status)
    if new is None or new in (MessageStatus.RECEIVED, MessageStatus.QUEUED):
        return 0  # "deleted", "played", ...: nothing of the delivery lifecycle
    callback_id = _uuid(status.raw.get("biz_opaque_callback_data"))
    match = Message.external_id == status.message_id
    if callback_id is not None:
        match = match | (Message.id == callback_id)
    at = status.timestamp
    values: dict[str, Any] = {
        "status": func.greatest(Message.status, cast(new.value, Message.status.type)),
        "external_id": func.coalesce(Message.external_id, status.message_id),
        "sent_at": func.coalesce(Message.sent_at, at),
    }
    if new in (MessageStatus.DELIVERED, MessageStatus.READ):
        values["delivered_at"] = func.coalesce(Message.delivered_at, at)
    if new == MessageStatus.READ:
        values["read_at"] = func.coalesce(Message.read_at, at)
    if new == MessageStatus.FAILED:
        error = status.errors[0] if status.errors else None
        values["failed_at"] = func.coalesce(Message.failed_at, at)
        values["sent_at"] = Message.sent_at
        values["error_code"] = error.code if error else None
        values["error_title"] = (error.title or error.message or "")[:300] if error else None
        values["error_detail"] = error.details if error else None
    updated = (
        await session.execute(
            update(Message)
            .where(
                Message.organisation_id == organisation_id,
                Message.direction == Direction.OUTBOUND,
                match,
            )
            .values(**values)
            .returning(Message.id, Message.conversation_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    for message_id, conversation_id in updated:
        await publish(session, Event(organisation_id, conversation_id, "message", message_id))
    return len(updated)


def _uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


__all__ = [
    "INGEST_NAMES",
    "IngestResult",
    "NumberDirectory",
    "NumberRoute",
    "apply_status",
    "fast_items",
    "phone_number_ids",
    "store_delivery",
    "verified_routes",
]
