"""A sliding-window rate limit over counters in PostgreSQL.

Each key counts its hits in fixed windows; the rate at a moment is this window's hits plus
the last window's, weighted by how much of the last window still lies within one window
length of now (the "sliding window counter": within a few per cent of an exact log of
hits, at one row per key and window instead of one per hit).

One statement per check, in the request's own transaction: the bump and the decision are
one ``INSERT .. ON CONFLICT DO UPDATE .. WHERE``, so concurrent requests from any process
queue on the counter's row until the one ahead commits, and exactly the limit get
through. (A transaction of its own would need a second pooled connection while the
request holds one: a full pool would then wait on itself.) A refused request is not
counted, nor is one whose transaction rolls back. Callers take a request's counters in
one order (address, then visitor), so two requests never wait on each other in a cycle.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.tokens import keyed_hash
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from cybergine.ratelimits.models import RateCounter

# Windows last at most this long; older counters are pruned (``prune``).
LONGEST_WINDOW_SECONDS = 3600

_BUMP = text(
    """
    WITH previous AS (
        SELECT coalesce(max(hits), 0) AS hits FROM rate_counters
        WHERE organisation_id = :organisation_id AND purpose = :purpose AND key_hash = :key_hash
          AND window_start = :previous_start
    ), bumped AS (
        INSERT INTO rate_counters (id, organisation_id, purpose, key_hash, window_start, hits)
        SELECT :id, :organisation_id, :purpose, :key_hash, :window_start, 1
        WHERE 1 + (SELECT hits FROM previous) * CAST(:weight AS float8) <= :maximum
        ON CONFLICT (organisation_id, purpose, key_hash, window_start)
        DO UPDATE SET hits = rate_counters.hits + 1
        WHERE rate_counters.hits + 1
              + (SELECT hits FROM previous) * CAST(:weight AS float8) <= :maximum
        RETURNING hits
    )
    SELECT (SELECT hits FROM bumped) AS hits,
           (SELECT hits FROM previous) AS previous,
           (SELECT hits FROM rate_counters
            WHERE organisation_id = :organisation_id AND purpose = :purpose AND key_hash = :key_hash
              AND window_start = :window_start) AS current
    """
)


@dataclass(frozen=True)
class RateLimit:
    """At most ``maximum`` hits per ``seconds`` for one key; ``purpose`` names the limit."""

    purpose: str
    maximum: int
    seconds: int

    def __post_init__(self) -> None:
        assert 0 < self.seconds <= LONGEST_WINDOW_SECONDS, "counters are pruned after an hour"
        assert self.maximum > 0
        assert len(self.purpose) <= 40


def customer_key(customer_id: uuid.UUID) -> str:
    """The key of a customer's counters, the same for every limit, so that their erasure
    finds them (``privacy.holdings``)."""
    return keyed_hash("rate-limit-customer", str(customer_id))


def address_key(address: str) -> str:
    return keyed_hash("rate-limit-address", address)


async def hit(
    session: AsyncSession,
    limit: RateLimit,
    organisation_id: uuid.UUID,
    key: str,
    *,
    now: float | None = None,
) -> float | None:
    """Count one hit of ``key`` (``customer_key`` or ``address_key``); None when it is
    allowed, else the seconds until one would be (a hint for ``Retry-After``)."""
    now = time.time() if now is None else now
    start = math.floor(now / limit.seconds) * limit.seconds
    # The share of the last window that still lies within one window length of now.
    weight = 1 - (now - start) / limit.seconds
    row = (
        await session.execute(
            _BUMP,
            {
                "id": uuid7(),
                "organisation_id": organisation_id,
                "purpose": limit.purpose,
                "key_hash": key,
                "window_start": datetime.fromtimestamp(start, UTC),
                "previous_start": datetime.fromtimestamp(start - limit.seconds, UTC),
                "weight": weight,
                "maximum": limit.maximum,
            },
        )
    ).one()
    if row.hits is not None:
        return None
    return _wait(limit, now - start, int(row.previous), int(row.current or 0))


def _wait(limit: RateLimit, elapsed: float, previous: int, current: int) -> float:
    """Seconds until ``current + 1 + previous * weight <= maximum`` holds again: the last
    window's share fades linearly, and at the next window this one becomes the last."""
    room = limit.maximum - 1 - current
    if room >= 0 and previous > 0:
        # previous * (1 - t / seconds) <= room  =>  t >= seconds * (1 - room / previous)
        return max(0.0, limit.seconds * (1 - room / previous) - elapsed)
    left_in_window = limit.seconds - elapsed
    # In the next window, this one's hits fade the same way from its start.
    then = max(0.0, limit.seconds * (1 - (limit.maximum - 1) / current)) if current else 0.0
    return left_in_window + then


async def prune(database: Database, *, now: datetime | None = None) -> int:
    """Counters of windows that no limit still looks at."""
    oldest = (now or datetime.now(UTC)) - timedelta(seconds=2 * LONGEST_WINDOW_SECONDS)
    async with database.autocommit() as session:
        result = await session.execute(delete(RateCounter).where(RateCounter.window_start < oldest))
    return int(getattr(result, "rowcount", 0) or 0)
