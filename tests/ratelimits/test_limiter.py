"""The shared rate limit against a real PostgreSQL: exact under concurrency from several
connection pools (as several processes would be), sliding across windows, refusals and
rolled-back requests not counted, keys apart per organisation and per limit, and old
counters pruned."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from cybergine.db.engine import Database
from cybergine.ratelimits import limiter
from cybergine.ratelimits.limiter import RateLimit
from cybergine.ratelimits.models import RateCounter
from tests.support.factories import make_organisation

TEN_A_MINUTE = RateLimit("test-limit", maximum=10, seconds=60)


async def _hit(
    database: Database,
    limit: RateLimit,
    organisation_id: uuid.UUID,
    key: str,
    *,
    now: float | None = None,
) -> float | None:
    """One request's check, in a transaction of its own as a request's would be."""
    async with database.transaction() as session:
        return await limiter.hit(session, limit, organisation_id, key, now=now)


# A moment 50 s into a window (windows start at multiples of 60 s since the epoch).
LATE_IN_A_WINDOW = 1_800_000_050.0


async def test_exactly_the_limit_gets_through_from_several_processes_at_once(
    database: Database, database_url: str
) -> None:
    organisation, _ = await make_organisation(database)
    key = limiter.customer_key(uuid.uuid4())
    other = Database(database_url, pool_size=5)  # a second process's pool
    try:
        pools = [database, other] * 15
        waits = await asyncio.gather(
            *(
                _hit(pool, TEN_A_MINUTE, organisation.id, key, now=LATE_IN_A_WINDOW)
                for pool in pools
            )
        )
    finally:
        await other.dispose()
    assert sum(wait is None for wait in waits) == 10
    assert all(wait > 0 for wait in waits if wait is not None)
    async with database.transaction() as session:
        counted = await session.scalar(select(func.sum(RateCounter.hits)))
    assert counted == 10, "a refused request was counted"


async def test_the_last_window_fades_out_as_the_window_slides(database: Database) -> None:
    organisation, _ = await make_organisation(database)
    key = limiter.address_key("198.51.100.7")

    async def hit(at: float) -> float | None:
        return await _hit(database, TEN_A_MINUTE, organisation.id, key, now=at)

    for _ in range(10):
        assert await hit(LATE_IN_A_WINDOW) is None
    refused = await hit(LATE_IN_A_WINDOW)
    assert refused is not None
    # 10 s to the next window, where the last one weighs 1 and fades by 1/60 a second:
    # one hit fits once it weighs 0.9, 6 s later.
    assert abs(refused - 16.0) < 0.01

    next_window = LATE_IN_A_WINDOW + 10
    assert await hit(next_window + 1) is not None  # 10 * 59/60 + 1 > 10
    assert await hit(next_window + 6) is None  # 10 * 0.9 + 1 == 10
    assert await hit(next_window + 6) is not None
    assert await hit(next_window + 30) is None  # 10 * 0.5 + 2 <= 10
    # Two windows on, the first no longer counts at all.
    for _ in range(8):
        assert await hit(next_window + 120) is None


async def test_keys_count_apart_per_organisation_and_per_limit(database: Database) -> None:
    first, _ = await make_organisation(database)
    second, _ = await make_organisation(database)
    key = limiter.address_key("203.0.113.9")
    other_limit = RateLimit("test-other", maximum=10, seconds=60)
    for _ in range(10):
        assert await _hit(database, TEN_A_MINUTE, first.id, key) is None
    assert await _hit(database, TEN_A_MINUTE, first.id, key) is not None
    assert await _hit(database, TEN_A_MINUTE, second.id, key) is None
    assert await _hit(database, other_limit, first.id, key) is None
    another = limiter.address_key("203.0.113.10")
    assert await _hit(database, TEN_A_MINUTE, first.id, another) is None


async def test_prune_drops_the_windows_no_limit_looks_at(database: Database) -> None:
    organisation, _ = await make_organisation(database)
    now = datetime.now(UTC)
    key = limiter.customer_key(uuid.uuid4())
    for at in (now - timedelta(hours=3), now - timedelta(minutes=5), now):
        assert await _hit(database, TEN_A_MINUTE, organisation.id, key, now=at.timestamp()) is None
    assert await limiter.prune(database, now=now) == 1
    async with database.transaction() as session:
        left = list((await session.execute(select(RateCounter.window_start))).scalars())
    assert len(left) == 2
    assert min(left) > now - timedelta(hours=2)


async def test_a_request_that_rolls_back_is_not_counted(database: Database) -> None:
    organisation, _ = await make_organisation(database)
    key = limiter.customer_key(uuid.uuid4())
    one_a_minute = RateLimit("test-one", maximum=1, seconds=60)

    async def failing_request() -> None:
        async with database.transaction() as session:
            assert await limiter.hit(session, one_a_minute, organisation.id, key) is None
            raise RuntimeError("the request failed after its check")

    with pytest.raises(RuntimeError):
        await failing_request()
    assert await _hit(database, one_a_minute, organisation.id, key) is None
    assert await _hit(database, one_a_minute, organisation.id, key) is not None
