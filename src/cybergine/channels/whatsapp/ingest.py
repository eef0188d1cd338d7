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
from sqlalchemy import String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.grace import accepting as organisation_accepting
from cybergine.accounts.models import Organisation
from cybergine.bounded_cache import BoundedCache
from cybergine.channels.whatsapp.models import (
    PHONE_NUMBER_ID_LENGTH,
    WhatsAppNumber,
)
from cybergine.channels.whatsapp.payloads import (
    InboundMessage,
    WebhookBatch,
    parse_webhook,
    without_card_numbers,
)
from cybergine.channels.whatsapp.signature import verify_signature
from cybergine.conversations import csat, intents
from cybergine.conversations.inbound import (
    RECORD_NAMES,
    ChannelAccount,
    CustomerIdentity,
    InboundContent,
    account_item,
    follow_up,
    follow_ups,
    message_item,
    needs_python,
)
from cybergine.conversations.models import Channel, MessageStatus
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from cybergine.db.jsonb import jsonb_argument
from cybergine.privacy.pseudonyms import erased_external_id

log = structlog.get_logger(__name__)


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
    # False while its organisation waits for its erasure (``accounts.grace``): what the
    # number receives is acknowledged and dropped.
    accepting: bool = True

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
                    select(WhatsAppNumber, Organisation.status)
                    .join(Organisation, Organisation.id == WhatsAppNumber.organisation_id)
                    .where(WhatsAppNumber.phone_number_id == any_(ids))
                )
                for number, status in rows:
                    found[number.phone_number_id] = self._route(
                        number, organisation_accepting(status)
                    )
        return found

    def remember(self, routes: Mapping[str, NumberRoute]) -> None:
        """Keep the numbers a delivery's signature verified for, for a few seconds."""
        for phone_number_id, route in routes.items():
            self._routes.put(phone_number_id, route)

    def _route(self, number: WhatsAppNumber, accepting: bool) -> NumberRoute:
        return NumberRoute(
            id=number.id,
            organisation_id=number.organisation_id,
            assistant_id=number.assistant_id,
            phone_number_id=number.phone_number_id,
            app_secret=number.app_secret or self._default_app_secret,
            opt_out_words=(*intents.DEFAULT_OPT_OUT_WORDS, *number.opt_out_keywords),
            opt_in_words=(*intents.DEFAULT_OPT_IN_WORDS, *number.opt_in_keywords),
            active=number.active,
            accepting=accepting,
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
    """Each change addressed to one of ``routes`` (its value with card numbers masked),
    with its number and what it holds; changes for other numbers are left out."""
    for field, value in _changes(body):
        metadata = value.get("metadata")
        phone_number_id = metadata.get("phone_number_id") if isinstance(metadata, Mapping) else None
        route = routes.get(phone_number_id) if isinstance(phone_number_id, str) else None
        if route is not None:
            # Masked once, for what is parsed and what the event row keeps (policy §12).
            value = without_card_numbers(value)
            batch = parse_webhook(
                {
                    "object": "whatsapp_business_account",
                    "entry": [{"changes": [{"field": field, "value": value}]}],
                },
                masked=True,
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
    (a message sent by another app on the same number). ``value`` comes with card
    numbers masked (``_routed_changes``), as everything parsed from it (policy §12)."""
    kept = dict(value)
    statuses = kept.get("statuses")
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
    transaction: one event row per change, the messages, the status changes, the jobs.

    The same SQL function as the group commit's (:func:`delivery_items` builds its
    batch), called for this delivery alone, then what only Python does: media downloads
    and consent changes (``conversations.inbound.follow_up``)."""
    items, pending = _items(body, routes)
    if not items:
        return IngestResult()
    answers = await _take_survey_answers(session, items, pending)
    outcome: dict[str, Any] = (
        await session.execute(
            select(
                func.cybergine_whatsapp_ingest(
                    jsonb_argument(items), jsonb_argument(INGEST_NAMES), type_=JSONB
                )
            )
        )
    ).scalar_one()
    for account, recorded, content in follow_ups(outcome["recorded"], pending):
        await follow_up(session, account, recorded, content)
    return IngestResult(
        events=len(items),
        messages=outcome["messages"] + answers,
        duplicates=outcome["duplicates"],
        statuses=outcome["statuses"],
        problems=sum(item["problem_count"] for item in items),
    )


async def _take_survey_answers(
    session: AsyncSession,
    items: list[dict[str, Any]],
    pending: Mapping[str, tuple[ChannelAccount, InboundContent]],
) -> int:
    """The messages that answer a customer's survey are kept in the surveyed conversation
    (``conversations.csat``) and taken out of the items: they open no new conversation.
    Answers how many were taken."""
    taken = 0
    for item in items:
        kept = []
        for message in item["messages"]:
            wanted = pending.get(message["id"])
            if wanted is not None and await _survey_answer(session, message, *wanted):
                taken += 1
            else:
                kept.append(message)
        item["messages"] = kept
    return taken


async def _survey_answer(
    session: AsyncSession,
    message: Mapping[str, Any],
    account: ChannelAccount,
    content: InboundContent,
) -> bool:
    if not csat.may_answer_survey(content.type, content.text, content.payload):
        return False
    return await csat.take_whatsapp_answer(
        session,
        csat.Answer(
            organisation_id=account.organisation_id,
            whatsapp_number_id=account.whatsapp_number_id,
            customer_external_id=str(message["customer"]),
            external_id=content.external_id,
            type=content.type,
            text=content.text,
            payload=dict(content.payload) if content.payload else None,
            sent_at=content.sent_at,
        ),
    )


# The statuses of a message's delivery lifecycle (Meta also sends "deleted", "played").
_LIFECYCLE = frozenset(MessageStatus) - {MessageStatus.RECEIVED, MessageStatus.QUEUED}

# What ``cybergine_whatsapp_ingest`` writes by name: those of every channel's
# ``cybergine_record_inbound``, which it calls.
INGEST_NAMES = RECORD_NAMES


def delivery_items(
    body: Mapping[str, Any], routes: Mapping[str, NumberRoute]
) -> list[dict[str, Any]] | None:
    """The delivery as items of ``cybergine_whatsapp_ingest`` (``db/sql``, called with
    :data:`INGEST_NAMES`) for the group commit, or None when one of its messages needs
    more than SQL (:func:`store_delivery` then stores it in a transaction of its own)."""
    items, pending = _items(body, routes)
    return None if pending else items


def _items(
    body: Mapping[str, Any], routes: Mapping[str, NumberRoute]
) -> tuple[list[dict[str, Any]], dict[str, tuple[ChannelAccount, InboundContent]]]:
    """The delivery's items, and the messages among them that need Python's follow-up,
    by item key."""
    items: list[dict[str, Any]] = []
    pending: dict[str, tuple[ChannelAccount, InboundContent]] = {}
    for field, value, route, batch in _routed_changes(body, routes):
        account = route.account()
        messages = []
        for message in batch.messages:
            content = _content(message)
            item = message_item(account, _customer(message), content)
            messages.append(item)
            if route.active and (
                needs_python(account, content)
                # Perhaps a survey's answer: looked for before it is recorded.
                or csat.may_answer_survey(content.type, content.text, content.payload)
            ):
                pending[item["id"]] = (account, content)
        statuses = []
        for status in batch.statuses:
            if status.status not in _LIFECYCLE:
                continue
            callback = _uuid(status.raw.get("biz_opaque_callback_data"))
            error = status.errors[0] if status.errors else None
            statuses.append(
                {
                    "wamid": status.message_id,
                    # what it is stored as once its customer is erased (policy §14)
                    "erased_wamid": erased_external_id(status.message_id),
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
                "lock_key": f"{route.id}:{messages[0]['customer'] if messages else ''}",
                "event_id": str(uuid7()),
                "account": account_item(account),
                "active": route.active,
                "field": field[:64],
                "value": kept_value(value),
                "problems": "\n".join(batch.problems)[:4000] or None,
                "problem_count": len(batch.problems),
                "messages": messages,
                "statuses": statuses,
                # Every status Meta sent is counted on the event row, a voice message's
                # "played" too, though only lifecycle ones move a message.
                "statuses_received": len(batch.statuses),
            }
        )
    return items, pending


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
    "delivery_items",
    "phone_number_ids",
    "store_delivery",
    "verified_routes",
]
