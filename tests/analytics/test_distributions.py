"""The response-time distributions come from the hourly aggregates' bucket columns, which
a refresh and a rebuild fill: on the known history (``known.py``) each bucket holds the
conversations its bounds say, and the drill-down of each bucket lists exactly those."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select, text

from cybergine.analytics import buckets, distributions, rebuild
from cybergine.analytics.definitions import Figure
from cybergine.analytics.periods import Filters, period
from cybergine.conversations.models import Channel
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from tests.analytics import known
from tests.analytics.conftest import Seeded

# Known first responses: the assistant's C1 30 s, C2 10 s, C3 60 s; people's C4 300 s
# (agent 10:05 after 10:00), C2 3000 s (agent 08:20 after 07:30). C7 is before the period.
EXPECTED = {
    "first_response": {1: {"C2"}, 2: {"C1"}, 3: {"C3"}},
    "agent_first_response": {4: {"C4"}, 5: {"C2"}},
}


def _filters(seeded: Seeded, channel: Channel | None = None) -> Filters:
    return Filters(period(seeded.known.first, seeded.known.last, "UTC"), channel=channel)


async def _distribution(
    database: Database, seeded: Seeded, filters: Filters
) -> dict[str, list[int]]:
    async with database.transaction() as session:
        return await distributions.response_times(
            TenantScope(session, seeded.known.organisation_id), filters
        )


def _counts(expected: dict[int, set[str]]) -> list[int]:
    return [len(expected.get(index, set())) for index in range(len(buckets.BUCKETS))]


async def test_each_bucket_counts_the_known_conversations(
    seeded: Seeded, database: Database
) -> None:
    found = await _distribution(database, seeded, _filters(seeded))
    assert found == {duration: _counts(EXPECTED[duration]) for duration in EXPECTED}

    webchat = await _distribution(database, seeded, _filters(seeded, channel=Channel.WEBCHAT))
    assert webchat == {
        "first_response": _counts({1: {"C2"}}),
        "agent_first_response": _counts({5: {"C2"}}),
    }


async def test_a_buckets_drilldown_lists_exactly_its_conversations(
    seeded: Seeded, database: Database
) -> None:
    names = {id: name for name, id in seeded.known.conversations.items()}
    filters = _filters(seeded)
    for duration, expected in EXPECTED.items():
        for index in range(len(buckets.BUCKETS)):
            selection = distributions.Selection(
                Figure.CONVERSATIONS, response=duration, bucket=index
            )
            ids = distributions.selected_conversations(
                seeded.known.organisation_id, selection, filters
            )
            async with database.transaction() as session:
                listed: set[uuid.UUID] = set(await session.scalars(select(ids.c.conversation_id)))
            assert {names[id] for id in listed} == expected.get(index, set()), (duration, index)


async def test_the_rebuild_fills_the_buckets(seeded: Seeded, database: Database) -> None:
    organisation_id = seeded.known.organisation_id
    async with database.transaction() as session:
        await session.execute(
            text(
                "UPDATE analytics_hourly SET "
                + ", ".join(f"{name} = 0" for name in buckets.COLUMNS)
                + " WHERE organisation_id = :o"
            ),
            {"o": organisation_id},
        )
    emptied = await _distribution(database, seeded, _filters(seeded))
    assert sum(map(sum, emptied.values())) == 0

    await rebuild.rebuild(
        database,
        idle_hours=known.IDLE_HOURS,
        organisation_id=organisation_id,
        since=datetime.combine(seeded.known.first, time(), UTC) - timedelta(days=7),
    )
    found = await _distribution(database, seeded, _filters(seeded))
    assert found == {duration: _counts(EXPECTED[duration]) for duration in EXPECTED}
