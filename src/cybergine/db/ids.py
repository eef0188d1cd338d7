"""Time-sortable identifiers (UUIDv7, RFC 9562 §5.7).

Primary keys are UUIDv7 so that they sort by creation time (index locality for
B-trees, cursor pagination by id) while staying unguessable enough not to leak counts.
Python 3.11's ``uuid`` module has no ``uuid7``; this is the RFC's layout with the
"monotonic random" method (§6.2, method 2) so ids made in the same millisecond by
one process still sort in order of creation.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

_lock = threading.Lock()
_last_ms = 0
_last_rand = 0
_RAND_BITS = 74  # 12 bits rand_a + 62 bits rand_b
_RAND_MAX = (1 << _RAND_BITS) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def uuid7() -> uuid.UUID:
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same (or a backwards-stepped) millisecond: keep the timestamp and
            # increment the random part so ordering holds.
            ms = _last_ms
            rand = _last_rand + 1 + (int.from_bytes(os.urandom(2)) & 0xFF)
            if rand > _RAND_MAX:  # counter overflow: borrow the next millisecond
                ms += 1
                rand = int.from_bytes(os.urandom(10)) & (_RAND_MAX >> 1)
        else:
            # Leave headroom in the top bit so increments rarely overflow.
            rand = int.from_bytes(os.urandom(10)) & (_RAND_MAX >> 1)
        _last_ms, _last_rand = ms, rand
    return _layout(ms, rand)


def _layout(ms: int, rand: int) -> uuid.UUID:
    """RFC 9562's fields: 48 bits of Unix milliseconds, the version, 12 + 62 random bits
    around the variant."""
    rand_a = rand >> 62
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= rand_a << 64
    value |= 0b10 << 62  # variant
    value |= rand_b
    return uuid.UUID(int=value)


def uuid7_time_ms(value: uuid.UUID) -> int:
    """The Unix time in milliseconds encoded in a UUIDv7."""
    return value.int >> 80


def uuid7_at(moment: datetime) -> uuid.UUID:
    """A UUIDv7 of ``moment`` rather than of now, for rows written with a time of their
    own (the demo's back-dated history), so that their ids sort with their times as
    every other row's do. Random below the millisecond: two made for one millisecond
    sort in no particular order (``message_id_after`` orders a conversation's)."""
    rand = int.from_bytes(os.urandom(10)) & (_RAND_MAX >> 1)
    return _layout(_milliseconds(moment), rand)


def uuid7_floor(moment: datetime) -> uuid.UUID:
    """The lowest UUID of ``moment``'s millisecond: every UUIDv7 made at or after it
    sorts at or above it, every one made before below (a range partition's bound)."""
    return uuid.UUID(int=_milliseconds(moment) << 80)


def _milliseconds(moment: datetime) -> int:
    # Exact: a float timestamp times 1000 can fall just below a whole millisecond.
    return (moment - _EPOCH) // timedelta(milliseconds=1)
