"""Keyset pagination cursors: one opaque, URL-safe, versioned format for every list.

A page hands out the sort key of its last row as ``next_cursor``; the next request sends
it back and the list continues strictly after that key, so a page stays stable while new
rows arrive (no OFFSET drift). The cursor is base64url (no padding) of a JSON array whose
first element is the format version, so a format change refuses old cursors cleanly
instead of misreading them.

Callers say which typed values they expect (``decode(cursor, TIMESTAMP, UUID)``); anything
else a client sends, however broken, is ``InvalidInput`` naming the field: a 422, never a
500.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, overload

from cybergine.errors import InvalidInput

VERSION = 1
# Longer than any cursor this module makes; the APIs cap the query parameter at this.
MAX_LENGTH = 500

Value = int | str | uuid.UUID | datetime | None
T = TypeVar("T")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")


class _Malformed(ValueError):
    """A cursor part that is not what the caller expects."""


@dataclass(frozen=True)
class Part(Generic[T]):
    """How one position of a cursor is read back from its JSON form."""

    read: Callable[[object], T]


def _uuid(raw: object) -> uuid.UUID:
    if not isinstance(raw, str):
        raise _Malformed
    return uuid.UUID(raw)


def _int(raw: object) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise _Malformed
    return raw


def _timestamp(raw: object) -> datetime:
    if not isinstance(raw, str):
        raise _Malformed
    at = datetime.fromisoformat(raw)
    # Every timestamp the database hands out is aware; a naive one was not made here.
    if at.tzinfo is None:
        raise _Malformed
    return at


UUID: Part[uuid.UUID] = Part(_uuid)
INT: Part[int] = Part(_int)
TIMESTAMP: Part[datetime] = Part(_timestamp)


def optional(part: Part[T]) -> Part[T | None]:
    """The part, or null (a sort key that may be NULL, such as "never active")."""

    def read(raw: object) -> T | None:
        return None if raw is None else part.read(raw)

    return Part(read)


def _json(value: Value) -> int | str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def encode(*key: Value) -> str:
    """The cursor for a row whose sort key is ``key`` (in the list's order)."""
    raw = json.dumps([VERSION, *(_json(value) for value in key)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@overload
def decode(cursor: str, p1: Part[T1], /, *, field: str = ...) -> tuple[T1]: ...
@overload
def decode(cursor: str, p1: Part[T1], p2: Part[T2], /, *, field: str = ...) -> tuple[T1, T2]: ...
@overload
def decode(
    cursor: str, p1: Part[T1], p2: Part[T2], p3: Part[T3], /, *, field: str = ...
) -> tuple[T1, T2, T3]: ...
def decode(cursor: str, *parts: Part[Any], field: str = "cursor") -> tuple[Any, ...]:
    """The key a page handed out, read as ``parts``; InvalidInput naming ``field`` for
    anything else (another list's cursor, an older format, garbage)."""
    invalid = InvalidInput(
        "That link to the next page is not valid: use the next_cursor of a page.", field=field
    )
    if len(cursor) > MAX_LENGTH:
        raise invalid
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True))
        if not (
            isinstance(data, list)
            and len(data) == len(parts) + 1
            and type(data[0]) is int
            and data[0] == VERSION
        ):
            raise invalid
        return tuple(part.read(raw) for part, raw in zip(parts, data[1:], strict=True))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        # json.JSONDecodeError and _Malformed are ValueErrors too.
        raise invalid from exc
