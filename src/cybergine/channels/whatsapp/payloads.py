"""WhatsApp Cloud API webhook bodies, parsed into typed, frozen values.

Pure: no database, no settings, no I/O. The input is the already JSON-decoded body
(verify its signature over the raw bytes first, see ``signature.py``).

Shape (Meta's documented format)::

    {"object": "whatsapp_business_account",
     "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": {
         "messaging_product": "whatsapp",
         "metadata": {"display_phone_number": ..., "phone_number_id": ...},
         "contacts": [{"profile": {"name": ...}, "wa_id": ...}],
         "messages": [...], "statuses": [...], "errors": [...]}}]}]}

Card numbers a customer types are masked to their last four digits before anything is
parsed (``without_card_numbers``, privacy policy §12), so no path that stores or answers a
message ever sees one; identifiers, which nobody types, are left as Meta sent them.

Only a body that is not a WhatsApp webhook at all raises ``PayloadError``. Anything
inside it that cannot be understood is skipped and described in ``WebhookBatch.problems``,
so one malformed message never costs the others: Meta retries a delivery that is not
acknowledged, and a body that always fails would be retried (and lost) whole.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from cybergine.privacy.card_numbers import mask_card_numbers_in

__all__ = [
    "MEDIA_TYPES",
    "ErrorDetail",
    "InboundMessage",
    "MediaRef",
    "OtherChange",
    "PayloadError",
    "StatusUpdate",
    "WebhookBatch",
    "check_envelope",
    "parse_webhook",
    "without_card_numbers",
]

WEBHOOK_OBJECT = "whatsapp_business_account"
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
# Keys whose values Meta or the business sets, never the customer: ids (any "..._id"),
# numbers, hashes, links. A card-like pattern must not garble them (a 15-digit phone
# number id or catalogue id can pass the Luhn check), and no customer types into them.
IDENTIFIER_KEYS = frozenset(
    {
        "id",
        "from",
        "display_phone_number",
        "timestamp",
        "expiration_timestamp",
        "biz_opaque_callback_data",
        "payload",  # a template button's payload, written by the business
        "sha256",
        "mime_type",
        "url",
        "source_url",
        "ctwa_clid",
    }
)


def is_identifier(key: str) -> bool:
    return key in IDENTIFIER_KEYS or key.endswith("_id")


class PayloadError(ValueError):
    """The body is not a WhatsApp Business Account webhook at all."""


@dataclass(frozen=True)
class ErrorDetail:
    code: int | None
    title: str | None
    message: str | None
    details: str | None  # error_data.details (or a top-level "details", as some SDKs send)


@dataclass(frozen=True)
class MediaRef:
    id: str  # the media id to download through the Graph API
    mime_type: str | None = None
    sha256: str | None = None
    filename: str | None = None
    caption: str | None = None
    url: str | None = None
    voice: bool | None = None  # audio recorded in the app as a voice note
    animated: bool | None = None  # stickers


@dataclass(frozen=True)
class InboundMessage:
    phone_number_id: str  # our business number that received it
    display_phone_number: str | None
    message_id: str
    from_wa_id: str
    profile_name: str | None
    timestamp: datetime  # aware, UTC
    type: str  # as Meta sent it; "unknown" when absent
    text: str | None  # the human-readable content, whatever the type
    media: MediaRef | None
    interactive_id: str | None  # chosen button / list row id, or a template button payload
    context_message_id: str | None  # the message this one replies to
    reaction_to: str | None
    errors: tuple[ErrorDetail, ...]  # message-level errors (e.g. 131051 unsupported type)
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class StatusUpdate:
    phone_number_id: str
    message_id: str
    recipient_wa_id: str | None
    status: str  # sent | delivered | read | failed | deleted | played | ... as received
    timestamp: datetime
    errors: tuple[ErrorDetail, ...]
    conversation_id: str | None
    pricing_category: str | None
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class OtherChange:
    """A change of another field (account_update, message_template_status_update, ...)."""

    field: str
    phone_number_id: str | None
    value: Mapping[str, Any]


@dataclass(frozen=True)
class WebhookBatch:
    messages: tuple[InboundMessage, ...]
    statuses: tuple[StatusUpdate, ...]
    errors: tuple[ErrorDetail, ...]  # value-level errors, not tied to one message
    other: tuple[OtherChange, ...]
    problems: tuple[str, ...]  # what was skipped, and why

    def __len__(self) -> int:
        return len(self.messages) + len(self.statuses) + len(self.errors) + len(self.other)


def check_envelope(body: Any) -> list[Any]:
    """The body's entries, or PayloadError when it is not a WhatsApp webhook at all."""
    if not isinstance(body, Mapping):
        raise PayloadError(f"a webhook body is a JSON object, not {type(body).__name__}")
    if body.get("object") != WEBHOOK_OBJECT:
        raise PayloadError(f"object is {body.get('object')!r}, not {WEBHOOK_OBJECT!r}")
    entries = body.get("entry")
    if not isinstance(entries, list):
        raise PayloadError("entry is not a list")
    return entries


def without_card_numbers(value: Mapping[str, Any]) -> dict[str, Any]:
    """A change's value with every card number in what people wrote masked to its last
    four digits; what a webhook keeps and what it parses both come from this."""
    masked: dict[str, Any] = mask_card_numbers_in(value, keep=is_identifier)
    return masked


def parse_webhook(body: Any, *, masked: bool = False) -> WebhookBatch:
    """Every message, status, error and other change in a webhook body; ``masked``: its
    changes' values are masked already (``without_card_numbers``), so not again."""
    entries = check_envelope(body)
    parser = _Parser(masked=masked)
    for e, entry in enumerate(entries):
        where = f"entry[{e}]"
        if not isinstance(entry, Mapping):
            parser.problem(where, "is not an object")
            continue
        changes = entry.get("changes")
        if not isinstance(changes, list):
            parser.problem(where, "has no changes list")
            continue
        for c, change in enumerate(changes):
            parser.change(f"{where}.changes[{c}]", change)
    return parser.batch()


class _Parser:
    def __init__(self, *, masked: bool = False) -> None:
        self.masked = masked
        self.messages: list[InboundMessage] = []
        self.statuses: list[StatusUpdate] = []
        self.errors: list[ErrorDetail] = []
        self.other: list[OtherChange] = []
        self.problems: list[str] = []

    def batch(self) -> WebhookBatch:
        return WebhookBatch(
            messages=tuple(self.messages),
            statuses=tuple(self.statuses),
            errors=tuple(self.errors),
            other=tuple(self.other),
            problems=tuple(self.problems),
        )

    def problem(self, where: str, reason: str) -> None:
        self.problems.append(f"{where}: {reason}")

    def change(self, where: str, change: Any) -> None:
        if not isinstance(change, Mapping):
            self.problem(where, "is not an object")
            return
        value = change.get("value")
        if not isinstance(value, Mapping):
            self.problem(where, "has no value object")
            return
        if not self.masked:
            value = without_card_numbers(value)
        field = change.get("field")
        metadata = _mapping(value.get("metadata"))
        phone_number_id = _str(metadata.get("phone_number_id"))
        if field != "messages":
            if not isinstance(field, str):
                self.problem(where, f"has no field name ({field!r})")
                return
            self.other.append(OtherChange(field, phone_number_id, MappingProxyType(value)))
            return

        for _, error in _items(value.get("errors"), where + ".value.errors", self):
            self.errors.append(_error(error))
        messages = value.get("messages")
        statuses = value.get("statuses")
        if not (messages or statuses):
            if not value.get("errors"):
                self.problem(where, "has no messages, statuses or errors")
            return
        if phone_number_id is None:
            # Without it the delivery cannot be routed to the channel that owns the number.
            self.problem(where, "has messages or statuses but no metadata.phone_number_id")
            return
        if messages:
            self.inbound(where + ".value", value, phone_number_id, metadata)
        for i, status in _items(statuses, where + ".value.statuses", self):
            self.status(f"{where}.value.statuses[{i}]", status, phone_number_id)

    def inbound(
        self,
        where: str,
        value: Mapping[str, Any],
        phone_number_id: str,
        metadata: Mapping[str, Any],
    ) -> None:
        contacts = [c for c in _list(value.get("contacts")) if isinstance(c, Mapping)]
        names: dict[str, str | None] = {}
        for contact in contacts:
            wa_id = _str(contact.get("wa_id"))
            if wa_id is not None and wa_id not in names:
                names[wa_id] = _str(_mapping(contact.get("profile")).get("name"))
        first_name = _str(_mapping(contacts[0].get("profile")).get("name")) if contacts else None
        # Only an unambiguous contact may stand in for a missing sender: guessing between
        # several would attribute (and answer) a message to the wrong person.
        lone_wa_id = next(iter(names)) if len(names) == 1 else None
        display = _str(metadata.get("display_phone_number"))

        for i, message in _items(value.get("messages"), where + ".messages", self):
            here = f"{where}.messages[{i}]"
            message_id = _str(message.get("id"))
            if message_id is None:
                self.problem(here, "has no id")
                continue
            sender = _str(message.get("from")) or lone_wa_id
            if sender is None:
                self.problem(here, f"{message_id} has no sender wa_id (from or contact)")
                continue
            timestamp = _timestamp(message.get("timestamp"))
            if timestamp is None:
                self.problem(here, f"{message_id} has no valid timestamp")
                continue
            kind = _str(message.get("type")) or "unknown"
            interactive_id, text = _content(kind, message)
            self.messages.append(
                InboundMessage(
                    phone_number_id=phone_number_id,
                    display_phone_number=display,
                    message_id=message_id,
                    from_wa_id=sender,
                    profile_name=names.get(sender, first_name),
                    timestamp=timestamp,
                    type=kind,
                    text=text,
                    media=_media(kind, message),
                    interactive_id=interactive_id,
                    context_message_id=_str(_mapping(message.get("context")).get("id")),
                    reaction_to=_str(_mapping(message.get("reaction")).get("message_id"))
                    if kind == "reaction"
                    else None,
                    errors=tuple(_error(e) for e in _list(message.get("errors"))),
                    raw=MappingProxyType(message),
                )
            )

    def status(self, where: str, status: Mapping[str, Any], phone_number_id: str) -> None:
        message_id = _str(status.get("id"))
        if message_id is None:
            self.problem(where, "has no message id")
            return
        state = _str(status.get("status"))
        if state is None:
            self.problem(where, f"{message_id} has no status")
            return
        timestamp = _timestamp(status.get("timestamp"))
        if timestamp is None:
            self.problem(where, f"{message_id} has no valid timestamp")
            return
        self.statuses.append(
            StatusUpdate(
                phone_number_id=phone_number_id,
                message_id=message_id,
                recipient_wa_id=_str(status.get("recipient_id")),
                status=state,
                timestamp=timestamp,
                errors=tuple(_error(e) for e in _list(status.get("errors"))),
                conversation_id=_str(_mapping(status.get("conversation")).get("id")),
                pricing_category=_str(_mapping(status.get("pricing")).get("category")),
                raw=MappingProxyType(status),
            )
        )


# --- content of one message ---------------------------------------------------------


def _content(kind: str, message: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(interactive_id, text) of a message of this type."""
    payload = _mapping(message.get(kind))
    if kind == "text":
        return None, _str(payload.get("body"))
    if kind in MEDIA_TYPES:
        return None, _str(payload.get("caption"))
    if kind == "interactive":
        return _interactive(payload)
    if kind == "button":
        return _str(payload.get("payload")), _str(payload.get("text"))
    if kind == "reaction":
        return None, _str(payload.get("emoji"))  # absent or "" when a reaction is removed
    if kind == "location":
        return None, _location(payload)
    if kind == "contacts":
        return None, _contact_names(message.get("contacts"))
    if kind == "order":
        return None, _order(payload)
    if kind == "system":
        return None, _str(payload.get("body"))
    if kind == "edit":
        # The edited message arrives whole; its new text is what the customer now says.
        edited = _mapping(payload.get("message"))
        return _content(_str(edited.get("type")) or "unknown", edited)
    return None, None


def _interactive(interactive: Mapping[str, Any]) -> tuple[str | None, str | None]:
    kind = _str(interactive.get("type"))
    reply = _mapping(interactive.get(kind)) if kind else {}
    if kind == "button_reply":
        return _str(reply.get("id")), _str(reply.get("title"))
    if kind == "list_reply":
        lines = [_str(reply.get("title")), _str(reply.get("description"))]
        return _str(reply.get("id")), _join([line for line in lines if line], "\n")
    if kind == "nfm_reply":
        return None, _flow_summary(reply.get("response_json")) or _str(reply.get("body"))
    return None, None


def _flow_summary(response_json: Any) -> str | None:
    """A Flow's answers as "key: value" lines; the body is just "Sent", saying nothing."""
    if not isinstance(response_json, str):
        return None
    try:
        answers = json.loads(response_json)
    except ValueError:
        return None
    if not isinstance(answers, Mapping):
        return None
    # The flow token is our own correlation id, not something the customer said.
    lines = [f"{k}: {_scalar(v)}" for k, v in answers.items() if k != "flow_token"]
    return _join(lines, "\n")


def _location(location: Mapping[str, Any]) -> str | None:
    named = _join([s for s in (_str(location.get(k)) for k in ("name", "address")) if s], ", ")
    if named:
        return named
    latitude, longitude = location.get("latitude"), location.get("longitude")
    if _is_coordinate(latitude) and _is_coordinate(longitude):
        return f"{latitude},{longitude}"
    return None


def _contact_names(contacts: Any) -> str | None:
    names = []
    for contact in _list(contacts):
        name = _mapping(_mapping(contact).get("name"))
        formatted = _str(name.get("formatted_name"))
        parts = [s for s in (_str(name.get(k)) for k in ("first_name", "last_name")) if s]
        full = formatted or _join(parts, " ")
        if full:
            names.append(full)
    return _join(names, ", ")


def _order(order: Mapping[str, Any]) -> str | None:
    lines = [_str(order.get("text")) or ""]
    for entry in _list(order.get("product_items")):
        item = _mapping(entry)
        product = _scalar(item.get("product_retailer_id"))
        price = " ".join(_scalar(item.get(k)) for k in ("item_price", "currency") if k in item)
        line = f"{_scalar(item.get('quantity', '?'))} x {product}"
        lines.append(f"{line} @ {price}" if price else line)
    return _join([line for line in lines if line], "\n")


def _media(kind: str, message: Mapping[str, Any]) -> MediaRef | None:
    if kind not in MEDIA_TYPES:
        return None
    media = _mapping(message.get(kind))
    media_id = _str(media.get("id"))
    if media_id is None:
        return None
    return MediaRef(
        id=media_id,
        mime_type=_str(media.get("mime_type")),
        sha256=_str(media.get("sha256")),
        filename=_str(media.get("filename")),
        caption=_str(media.get("caption")),
        url=_str(media.get("url")),
        voice=_bool(media.get("voice")),
        animated=_bool(media.get("animated")),
    )


def _error(error: Any) -> ErrorDetail:
    fields = _mapping(error)
    code = fields.get("code")
    if isinstance(code, str) and _DIGITS.fullmatch(code):
        code = int(code)
    return ErrorDetail(
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        title=_str(fields.get("title")),
        message=_str(fields.get("message")),
        details=_str(_mapping(fields.get("error_data")).get("details"))
        or _str(fields.get("details")),
    )


# --- tolerant field access ----------------------------------------------------------

_EMPTY: Mapping[str, Any] = MappingProxyType({})
# ASCII only and bounded: str.isdigit() admits "²", which int() rejects, and int() refuses
# strings of thousands of digits.
_DIGITS = re.compile(r"[0-9]{1,18}")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _items(value: Any, where: str, parser: _Parser) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """The objects of a list, reporting anything else instead of failing on it."""
    if value is None:
        return
    if not isinstance(value, list):
        parser.problem(where, "is not a list")
        return
    for i, item in enumerate(value):
        if isinstance(item, Mapping):
            yield i, item
        else:
            parser.problem(f"{where}[{i}]", "is not an object")


def _str(value: Any) -> str | None:
    """A non-empty string; ids sent as JSON numbers by some SDKs become strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _join(parts: list[str], separator: str) -> str | None:
    return separator.join(parts) or None


def _is_coordinate(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) or (
        isinstance(value, str) and bool(value)
    )


def _timestamp(value: Any) -> datetime | None:
    """Epoch seconds, as Meta's string or as an SDK's number; None when unusable."""
    seconds: float
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        seconds = int(value.strip())
    else:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
