"""The keyset cursor every list hands out: round trips its typed key, stays URL-safe, and
refuses anything it did not make as a 422 naming the field (never a 500)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cybergine import pagination
from cybergine.errors import InvalidInput

ID = uuid.UUID("0190c0de-0000-7000-8000-000000000000")
AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_round_trips_each_shape_the_lists_use() -> None:
    assert pagination.decode(pagination.encode(ID), pagination.UUID) == (ID,)
    assert pagination.decode(pagination.encode(AT, ID), pagination.TIMESTAMP, pagination.UUID) == (
        AT,
        ID,
    )
    maybe_at = pagination.optional(pagination.TIMESTAMP)
    assert pagination.decode(pagination.encode(None, ID), maybe_at, pagination.UUID) == (
        None,
        ID,
    )
    key = (2, AT.astimezone(timezone(timedelta(hours=5, minutes=30))), ID)
    decoded = pagination.decode(pagination.encode(*key), pagination.INT, maybe_at, pagination.UUID)
    assert decoded == key
    assert decoded[1] is not None
    assert decoded[1].utcoffset() == timedelta(hours=5, minutes=30)


def test_is_url_safe_and_opaque() -> None:
    cursor = pagination.encode(3, AT.replace(microsecond=999_999), ID)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert str(ID) not in cursor
    assert len(cursor) < pagination.MAX_LENGTH


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        "%%%",
        "x" * (pagination.MAX_LENGTH + 1),
        _b64(b"hello"),
        _b64(b'"ab"'),
        _b64(b'{"v": 1}'),
        _b64('["\u00e9"]'.encode("latin-1")),
        # The formats before this module (no version): refused, not misread.
        _b64(b'["2026-03-01T09:00:00+00:00", "0190c0de-0000-7000-8000-000000000000"]'),
        str(ID),
        # Another version, a boolean posing as one, the wrong number of parts.
        _b64(b'[2, "2026-03-01T09:00:00+00:00", "0190c0de-0000-7000-8000-000000000000"]'),
        _b64(b'[true, "2026-03-01T09:00:00+00:00", "0190c0de-0000-7000-8000-000000000000"]'),
        _b64(b'[1, "0190c0de-0000-7000-8000-000000000000"]'),
        # Wrong types in the right places.
        _b64(b'[1, "2026-03-01T09:00:00+00:00", "not-a-uuid"]'),
        _b64(b'[1, "yesterday", "0190c0de-0000-7000-8000-000000000000"]'),
        _b64(b'[1, "2026-03-01T09:00:00", "0190c0de-0000-7000-8000-000000000000"]'),  # naive
        _b64(b'[1, null, "0190c0de-0000-7000-8000-000000000000"]'),  # not optional here
        _b64(b'[1, 42, "0190c0de-0000-7000-8000-000000000000"]'),
        _b64(b'[1, "2026-03-01T09:00:00+00:00", 5]'),
    ],
)
def test_anything_else_is_invalid_input_naming_the_field(cursor: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        pagination.decode(cursor, pagination.TIMESTAMP, pagination.UUID, field="after")
    assert refused.value.status == 422
    assert refused.value.extra == {"field": "after"}


def test_an_integer_part_is_not_a_boolean() -> None:
    with pytest.raises(InvalidInput):
        pagination.decode(
            _b64(b'[1, true, "0190c0de-0000-7000-8000-000000000000"]'),
            pagination.INT,
            pagination.UUID,
        )
