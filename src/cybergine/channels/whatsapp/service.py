"""WhatsApp business numbers: validation, platform-wide uniqueness, and the audit trail.

Takes the caller's ``TenantScope`` and ``Principal``; never commits. The access token and
app secret are stored encrypted and the webhook verify token only as its SHA-256, so none
of them can leave through the API. Creates, changes and deletions are audited with the
names of the fields involved, never their values.

Credentials are checked with Meta before they are saved (:func:`check_credentials`, which
asks the Graph API for the number with the token): a bad token, or a number the token
cannot see, is refused with Meta's own message. That call runs outside any transaction,
between :func:`check_new_number` (the rules the database can check, so Meta is not asked
about a number that could not be saved anyway) and :func:`create_number`.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cybergine.accounts.principal import Principal
from cybergine.accounts.tokens import keyed_hash
from cybergine.assistants.models import Assistant
from cybergine.channels.whatsapp.graph import GraphClient, GraphError, PhoneNumberInfo
from cybergine.channels.whatsapp.models import WhatsAppNumber
from cybergine.db.tenancy import TenantScope
from cybergine.errors import Conflict, CybergineError, InvalidInput
from cybergine.privacy import audit

MAX_META_ID_CHARS = 64  # phone_number_id, waba_id
MAX_DISPLAY_NUMBER_CHARS = 32
MAX_ACCESS_TOKEN_CHARS = 1000
MAX_APP_SECRET_CHARS = 200
MAX_VERIFY_TOKEN_CHARS = 200
MAX_KEYWORDS = 20
MAX_KEYWORD_CHARS = 50
MAX_SEND_RATE = 1000.0

ALREADY_CONNECTED = "This WhatsApp number is already connected."
CHECK_TIMEOUT_SECONDS = 10.0

# Meta's codes for "this token cannot use that object": it does not exist for the token
# (100), or the token lacks the permission (10, 200) or the capability (3).
_NOT_VISIBLE_CODES = frozenset({3, 10, 100, 200})


class WhatsAppUnreachable(CybergineError):
    """Meta could not be asked (network, timeout, Meta's own server error): the
    credentials are neither accepted nor refused."""

    status = 502
    type_slug = "whatsapp-unreachable"
    title = "WhatsApp could not be reached"


_META_ID = re.compile(r"[0-9]+")
_DISPLAY_NUMBER = re.compile(r"[0-9 +()\-]+")

# Settings that may be null: the platform default (CYBERGINE_WHATSAPP_*) applies, or, for
# the assistant, messages are kept for agents.
NULLABLE = frozenset({"assistant_id", "app_secret", "verify_token", "send_rate"})


@dataclass
class NumberChanges:
    """The settings to write. Only the names in ``fields_set`` are applied (so a PATCH
    can tell "not sent" from "set to null"); on create the others keep their defaults."""

    assistant_id: uuid.UUID | None = None
    phone_number_id: str | None = None
    waba_id: str | None = None
    display_phone_number: str | None = None
    access_token: str | None = None
    app_secret: str | None = None
    verify_token: str | None = None
    opt_out_keywords: Sequence[str] | None = None
    opt_in_keywords: Sequence[str] | None = None
    send_rate: float | None = None
    active: bool | None = None
    fields_set: set[str] = field(default_factory=set)


SETTINGS = tuple(f for f in NumberChanges.__dataclass_fields__ if f != "fields_set")
REQUIRED_ON_CREATE = (
    "assistant_id",
    "phone_number_id",
    "waba_id",
    "display_phone_number",
    "access_token",
)


def verify_token_digest(token: str) -> str:
    """What is stored of a webhook verify token (hex SHA-256), and what a presented token
    is compared against."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issued_verify_token(phone_number_id: str) -> str:
    """The verify token the dashboard gives a number it connects: derived from the server
    key and Meta's id, so its page can show it again while only its SHA-256 is stored,
    like any verify token."""
    return keyed_hash("whatsapp.verify-token", phone_number_id)[:32]


def shown_verify_token(number: WhatsAppNumber, platform_default: str | None) -> str | None:
    """The verify token to paste into Meta's dashboard for ``number``, when we can say it:
    the one the dashboard issued, or the platform's default. None: the number has its own,
    set through the API, which is not kept."""
    if number.verify_token_sha256 is None:
        return platform_default
    issued = issued_verify_token(number.phone_number_id)
    return issued if verify_token_digest(issued) == number.verify_token_sha256 else None


# --- Validation ---------------------------------------------------------------------


def _label(field_name: str) -> str:
    return field_name.replace("_", " ").capitalize()


def clean_meta_id(value: str, *, field_name: str) -> str:
    value = value.strip()
    if not _META_ID.fullmatch(value) or len(value) > MAX_META_ID_CHARS:
        raise InvalidInput(
            f"{_label(field_name)} is Meta's numeric id: 1 to {MAX_META_ID_CHARS} digits "
            "(WhatsApp Manager, API setup).",
            field=field_name,
        )
    return value


def clean_display_phone_number(value: str) -> str:
    value = " ".join(value.replace("\x00", "").split())
    if (
        not _DISPLAY_NUMBER.fullmatch(value)
        or not any(ch.isdigit() for ch in value)
        or len(value) > MAX_DISPLAY_NUMBER_CHARS
    ):
        raise InvalidInput(
            "The display phone number is a phone number such as '+1 (555) 010-0200': "
            f"digits, spaces, +, - and parentheses, at most {MAX_DISPLAY_NUMBER_CHARS} "
            "characters.",
            field="display_phone_number",
        )
    return value


def _secret(value: str, *, field_name: str, limit: int, hint: str) -> str:
    value = value.strip()
    if not value or len(value) > limit or any(ch.isspace() for ch in value):
        raise InvalidInput(
            f"{_label(field_name)} is 1 to {limit} characters without spaces{hint}.",
            field=field_name,
        )
    return value


def clean_keywords(keywords: Sequence[str], *, field_name: str) -> list[str]:
    """Casefolded, spaces collapsed, duplicates dropped (first kept)."""
    cleaned: list[str] = []
    for keyword in keywords:
        value = " ".join(keyword.replace("\x00", "").split()).casefold()
        if not value or len(value) > MAX_KEYWORD_CHARS:
            raise InvalidInput(
                f"Each keyword has 1 to {MAX_KEYWORD_CHARS} characters.", field=field_name
            )
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_KEYWORDS:
        raise InvalidInput(
            f"A number has at most {MAX_KEYWORDS} {_label(field_name).lower()}.",
            field=field_name,
        )
    return cleaned


def clean_send_rate(value: float) -> float:
    if not (math.isfinite(value) and 0 < value <= MAX_SEND_RATE):
        raise InvalidInput(
            f"The send rate is in messages per second: more than 0, at most {MAX_SEND_RATE:g} "
            "(send null for the platform default).",
            field="send_rate",
        )
    return float(value)


async def _clean_assistant_id(scope: TenantScope, value: uuid.UUID) -> uuid.UUID:
    # InvalidInput, not NotFound: the number is what is being written; the wording is
    # the same for another organisation's assistant, so its existence does not leak.
    if await scope.find(Assistant, value) is None:
        raise InvalidInput("No such assistant.", field="assistant_id")
    return value


async def _cleaned(scope: TenantScope, name: str, value: Any) -> Any:
    """The value to store for setting ``name``, or InvalidInput naming it."""
    if value is None:
        if name in NULLABLE:
            return None
        raise InvalidInput(f"{_label(name)} cannot be null.", field=name)
    match name:
        case "assistant_id":
            return await _clean_assistant_id(scope, value)
        case "phone_number_id" | "waba_id":
            return clean_meta_id(value, field_name=name)
        case "display_phone_number":
            return clean_display_phone_number(value)
        case "access_token":
            return _secret(value, field_name=name, limit=MAX_ACCESS_TOKEN_CHARS, hint="")
        case "app_secret" | "verify_token":
            limit = MAX_APP_SECRET_CHARS if name == "app_secret" else MAX_VERIFY_TOKEN_CHARS
            return _secret(
                value,
                field_name=name,
                limit=limit,
                hint=" (send null for the platform default)",
            )
        case "opt_out_keywords" | "opt_in_keywords":
            return clean_keywords(value, field_name=name)
        case "send_rate":
            return clean_send_rate(value)
        case "active":
            return bool(value)
    raise InvalidInput(f"{name!r} is not a setting of a WhatsApp number.", field=name)


async def _validated(scope: TenantScope, changes: NumberChanges) -> dict[str, Any]:
    """Every setting in ``fields_set``, cleaned; InvalidInput names the first bad one."""
    return {
        name: await _cleaned(scope, name, getattr(changes, name))
        for name in SETTINGS
        if name in changes.fields_set
    }


def _write(number: WhatsAppNumber, values: Mapping[str, Any]) -> list[str]:
    """Sets the values; returns the names of the fields that changed (never the values).
    The verify token is stored as its digest but reported under its own name."""
    changed = []
    for name, value in values.items():
        column = name
        if name == "verify_token":
            column = "verify_token_sha256"
            value = None if value is None else verify_token_digest(value)
        if getattr(number, column) != value:
            setattr(number, column, value)
            changed.append(name)
    return sorted(changed)


# --- Operations ---------------------------------------------------------------------


async def _assert_unconnected(scope: TenantScope, phone_number_id: str) -> None:
    # Platform-wide on purpose (webhooks are routed by this id), so not scope.select;
    # the answer never says which organisation has it.
    statement = select(WhatsAppNumber.id).where(WhatsAppNumber.phone_number_id == phone_number_id)
    if (await scope.session.execute(statement)).first() is not None:
        raise Conflict(ALREADY_CONNECTED, field="phone_number_id")


async def check_new_number(scope: TenantScope, changes: NumberChanges) -> None:
    """Every rule :func:`create_number` applies, without writing: run before asking Meta,
    so a number that could not be saved costs no call to the Graph API."""
    for name in REQUIRED_ON_CREATE:
        if name not in changes.fields_set or getattr(changes, name) is None:
            raise InvalidInput(f"{_label(name)} is required.", field=name)
    values = await _validated(scope, changes)
    await _assert_unconnected(scope, values["phone_number_id"])


async def check_credentials(
    graph_url: str, phone_number_id: str, access_token: str
) -> PhoneNumberInfo:
    """Asks Meta for the number with the token (``GET /{phone-number-id}``); never call it
    inside a transaction. A bad token is refused naming ``access_token``, a number the
    token cannot see naming ``phone_number_id``, each with Meta's message."""
    phone_number_id = clean_meta_id(phone_number_id, field_name="phone_number_id")
    access_token = _secret(
        access_token, field_name="access_token", limit=MAX_ACCESS_TOKEN_CHARS, hint=""
    )
    client = GraphClient(base_url=graph_url, timeout=CHECK_TIMEOUT_SECONDS)
    try:
        return await client.phone_number(phone_number_id, access_token)
    except GraphError as error:
        raise _refusal(error) from None
    finally:
        await client.aclose()


def _refusal(error: GraphError) -> CybergineError:
    meta_says = f"WhatsApp says: {error.message}"
    if error.token_invalid:
        return InvalidInput(
            f"{meta_says} Copy the access token again from your Meta app.",
            field="access_token",
        )
    if error.code in _NOT_VISIBLE_CODES:
        return InvalidInput(
            f"{meta_says} Check the phone number id, and that the token belongs to the "
            "app this number is added to.",
            field="phone_number_id",
        )
    if error.retryable:
        return WhatsAppUnreachable(
            f"We could not reach WhatsApp to check these details ({error.message}). "
            "Nothing was saved; try again in a moment."
        )
    return InvalidInput(f"{meta_says} Nothing was saved.", field="access_token")


def _new_number() -> WhatsAppNumber:
    """A number with every default spelled out (ORM defaults apply only at flush)."""
    return WhatsAppNumber(
        assistant_id=None,
        app_secret=None,
        verify_token_sha256=None,
        opt_out_keywords=[],
        opt_in_keywords=[],
        send_rate=None,
        active=True,
        next_send_at=None,
    )


async def create_number(
    scope: TenantScope, caller: Principal, changes: NumberChanges
) -> WhatsAppNumber:
    for name in REQUIRED_ON_CREATE:
        if name not in changes.fields_set or getattr(changes, name) is None:
            raise InvalidInput(f"{_label(name)} is required.", field=name)
    values = await _validated(scope, changes)
    await _assert_unconnected(scope, values["phone_number_id"])
    number = _new_number()
    _write(number, values)
    try:
        # A savepoint: a concurrent registration of the same id loses here, cleanly.
        async with scope.session.begin_nested():
            scope.add(number)
            await scope.session.flush()
    except IntegrityError as exc:
        if "phone_number_id" not in str(exc.orig):
            raise
        raise Conflict(ALREADY_CONNECTED, field="phone_number_id") from None
    await audit.record(
        scope.session,
        action="whatsapp_number.created",
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="whatsapp_number",
        target_id=str(number.id),
        details={"fields": sorted(values)},
    )
    return number


async def get_number(scope: TenantScope, number_id: uuid.UUID) -> WhatsAppNumber:
    return await scope.get(WhatsAppNumber, number_id, what="WhatsApp number")


async def list_numbers(scope: TenantScope) -> list[WhatsAppNumber]:
    result = await scope.session.execute(
        scope.select(WhatsAppNumber).order_by(
            WhatsAppNumber.display_phone_number, WhatsAppNumber.id
        )
    )
    return list(result.scalars())


async def update_number(
    scope: TenantScope, caller: Principal, number_id: uuid.UUID, changes: NumberChanges
) -> WhatsAppNumber:
    number = await scope.get(WhatsAppNumber, number_id, for_update=True, what="WhatsApp number")
    if "phone_number_id" in changes.fields_set and changes.phone_number_id != (
        number.phone_number_id
    ):
        raise InvalidInput(
            "The phone number id cannot be changed: connect the other number separately.",
            field="phone_number_id",
        )
    values = await _validated(scope, changes)
    changed = _write(number, values)
    if changed:
        await scope.session.flush()
        await audit.record(
            scope.session,
            action="whatsapp_number.updated",
            actor=caller.actor,
            organisation_id=scope.organisation_id,
            target_type="whatsapp_number",
            target_id=str(number.id),
            details={"fields": changed},
        )
    return number


async def delete_number(scope: TenantScope, caller: Principal, number_id: uuid.UUID) -> str:
    """Deletes the number; returns its (now free) phone number id."""
    number = await scope.get(WhatsAppNumber, number_id, for_update=True, what="WhatsApp number")
    phone_number_id = number.phone_number_id
    await scope.delete(number)
    await scope.session.flush()
    await audit.record(
        scope.session,
        action="whatsapp_number.deleted",
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="whatsapp_number",
        target_id=str(number_id),
    )
    return phone_number_id
