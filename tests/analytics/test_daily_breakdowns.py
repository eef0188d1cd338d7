"""The breakdowns a period reads per UTC day for its whole days and per hour for its
edges (``analytics.days``): known answers in a zone whose offset is not whole hours and
changes for daylight saving time (Australia/Adelaide: +10:30 until 03:00 on Sunday 5
April 2026, +9:30 after, so that local day has 25 hours), one whose offset is not whole
hours (Asia/Kathmandu, +5:45), and UTC.

One answer per conversation, each with its own source, a hand-off, and prompt tokens a
power of two, so a sum names exactly the conversations it counts. Times are UTC:

    A 04-03 13:45 (1)   B 04-03 14:10 (2)   H 04-03 20:00 (4)   C 04-04 12:00 (8)
    J 04-05 02:00 (512) D 04-05 16:30 (16)  I 04-05 18:50 (32)  E 04-06 14:50 (64)
    F 04-06 15:10 (128) G 04-03 10:00 (256)

A period runs from its first local midnight to the one after its last day, each moved
to the next whole UTC hour (``periods``):

- Adelaide 4-6 April: 04-03 14:00 to 04-06 15:00 UTC: B H C J D I E = 638.
- Kathmandu 4-5 April: 04-03 19:00 to 04-05 19:00: H C J D I = 572.
- UTC 4-5 April: whole days only: C J D I = 568.
- Kathmandu 5 April: 04-04 19:00 to 04-05 19:00, no whole UTC day inside: J D I = 560.
- Adelaide 5 April (25 hours): 04-04 14:00 to 04-05 15:00: J = 512.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from cybergine.analytics import days, embedding_usage, rollups, service
from cybergine.analytics.embedding_usage_models import Purpose
from cybergine.analytics.periods import Filters, period
from cybergine.conversations.models import Direction, Sender
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.embeddings.base import EmbeddingUsage
from tests.analytics.conftest import measure
from tests.support.conversations import make_conversation, make_message
from tests.support.factories import make_organisation

TOKENS = {
    "A": (datetime(2026, 4, 3, 13, 45, tzinfo=UTC), 1),
    "B": (datetime(2026, 4, 3, 14, 10, tzinfo=UTC), 2),
    "H": (datetime(2026, 4, 3, 20, 0, tzinfo=UTC), 4),
    "C": (datetime(2026, 4, 4, 12, 0, tzinfo=UTC), 8),
    "J": (datetime(2026, 4, 5, 2, 0, tzinfo=UTC), 512),
    "D": (datetime(2026, 4, 5, 16, 30, tzinfo=UTC), 16),
    "I": (datetime(2026, 4, 5, 18, 50, tzinfo=UTC), 32),
    "E": (datetime(2026, 4, 6, 14, 50, tzinfo=UTC), 64),
    "F": (datetime(2026, 4, 6, 15, 10, tzinfo=UTC), 128),
    "G": (datetime(2026, 4, 3, 10, 0, tzinfo=UTC), 256),
}
WINDOW = (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 9, tzinfo=UTC))


async def _add(database: Database, organisation_id: uuid.UUID, name: str) -> None:
    at, tokens = TOKENS[name]
    async with database.transaction() as session:
        conversation = await make_conversation(
            session,
            organisation_id,
            created_at=at,
            handoff_at=at + timedelta(minutes=2),
            handoff_reason="customer_request",
        )
        await make_message(session, conversation, created_at=at)
        await make_message(
            session,
            conversation,
            direction=Direction.OUTBOUND,
            sender=Sender.ASSISTANT,
            created_at=at + timedelta(seconds=30),
            grounded=True,
            sources=[{"item_id": f"item-{name}", "cited": True}],
            llm_provider="openai",
            llm_model="gpt-x",
            prompt_tokens=tokens,
            completion_tokens=1,
        )
        conversation.last_message_at = at + timedelta(seconds=30)


async def _recompute(
    database: Database, organisation_id: uuid.UUID, start: datetime, end: datetime
) -> None:
    async with database.transaction() as session:
        await rollups.rebuild_step(session, organisation_id, start, end, measure())


@pytest.fixture
async def history(database: Database) -> uuid.UUID:
    organisation, _ = await make_organisation(database, name="Daily breakdowns")
    for name in TOKENS:
        await _add(database, organisation.id, name)
    await _recompute(database, organisation.id, *WINDOW)
    return organisation.id


async def _breakdowns(
    database: Database, organisation_id: uuid.UUID, first: date, last: date, zone: str
) -> tuple[int, int, set[str], int]:
    """Answers, prompt tokens, sources cited and hand-offs of the period."""
    async with database.transaction() as session:
        found = await service.summary(
            TenantScope(session, organisation_id), Filters(period(first, last, zone))
        )
    usage = found.breakdowns["model_usage"]
    reasons = found.breakdowns["handoff_reasons"]
    assert all(row["citations"] == 1 for row in found.breakdowns["top_sources"]), found.breakdowns
    # The hourly figures and the unique customers (each conversation has its own, read
    # from the rows of figures) count the same conversations: the period's bounds are
    # whole UTC hours even where local midnight is not.
    assert found.current.unique_customers == found.current["conversations"]
    return (
        sum(row["answers"] for row in usage),
        sum(row["prompt_tokens"] for row in usage),
        {row["item_id"] for row in found.breakdowns["top_sources"]},
        sum(row["handoffs"] for row in reasons),
    )


def _expected(*names: str) -> tuple[int, int, set[str], int]:
    return (
        len(names),
        sum(TOKENS[name][1] for name in names),
        {f"item-{name}" for name in names},
        len(names),
    )


@pytest.mark.parametrize(
    ("first", "last", "zone", "names"),
    [
        (date(2026, 4, 4), date(2026, 4, 6), "Australia/Adelaide", "BHCJDIE"),
        (date(2026, 4, 4), date(2026, 4, 5), "Asia/Kathmandu", "HCJDI"),
        (date(2026, 4, 4), date(2026, 4, 5), "UTC", "CJDI"),
        (date(2026, 4, 5), date(2026, 4, 5), "Asia/Kathmandu", "JDI"),
        (date(2026, 4, 5), date(2026, 4, 5), "Australia/Adelaide", "J"),
    ],
)
async def test_a_period_counts_exactly_its_hours_in_any_zone(
    history: uuid.UUID, database: Database, first: date, last: date, zone: str, names: str
) -> None:
    assert await _breakdowns(database, history, first, last, zone) == _expected(*names)


async def test_the_whole_days_are_read_from_the_daily_rows(
    history: uuid.UUID, database: Database
) -> None:
    """The daily rows are the sums of the days' hours; a period of whole days reads them
    alone (what they hold, not the hourly rows, is what it answers)."""
    async with database.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT day, sum(prompt_tokens) FROM analytics_daily_model_usage"
                " WHERE organisation_id = :o GROUP BY day ORDER BY day"
            ),
            {"o": history},
        )
        assert [(day.date(), int(tokens)) for day, tokens in rows] == [
            (date(2026, 4, 3), 1 + 2 + 4 + 256),
            (date(2026, 4, 4), 8),
            (date(2026, 4, 5), 512 + 16 + 32),
            (date(2026, 4, 6), 64 + 128),
        ]
        await session.execute(
            text(
                "UPDATE analytics_daily_model_usage SET prompt_tokens = prompt_tokens + 1000"
                " WHERE organisation_id = :o AND day = '2026-04-04T00:00Z'"
            ),
            {"o": history},
        )
    answers, tokens, *_ = await _breakdowns(
        database, history, date(2026, 4, 4), date(2026, 4, 5), "UTC"
    )
    assert (answers, tokens) == (4, 1568)


async def test_a_refresh_adds_a_new_conversation_to_its_hour_and_its_day(
    history: uuid.UUID, database: Database
) -> None:
    """A refresh moves the aggregates by the changed conversations' rows: a conversation
    begun at 21:15 joins the daily rows of its day beside that day's other hours, and
    the hourly rows of its hour."""
    async with database.transaction() as session:
        await rollups.refresh(session, history, measure())  # the first: sets the mark
    TOKENS["K"] = (datetime(2026, 4, 4, 21, 15, tzinfo=UTC), 2048)
    try:
        await _add(database, history, "K")
        async with database.transaction() as session:
            assert await rollups.refresh(session, history, measure()) == 1
        found = await _breakdowns(database, history, date(2026, 4, 4), date(2026, 4, 5), "UTC")
        assert found == _expected("C", "K", "J", "D", "I")
        # 04-04 19:00 to 04-05 19:00 UTC: K is in the hourly rows of the edge.
        kathmandu = await _breakdowns(
            database, history, date(2026, 4, 5), date(2026, 4, 5), "Asia/Kathmandu"
        )
        assert kathmandu == _expected("K", "J", "D", "I")
    finally:
        del TOKENS["K"]


def test_a_period_splits_into_whole_utc_days_and_edges() -> None:
    adelaide = period(date(2026, 4, 4), date(2026, 4, 6), "Australia/Adelaide")
    split = days.split(adelaide.start, adelaide.end)
    assert (split.start, split.end) == (
        datetime(2026, 4, 3, 14, tzinfo=UTC),
        datetime(2026, 4, 6, 15, tzinfo=UTC),
    )
    assert (split.first_day, split.last_day) == (
        datetime(2026, 4, 4, tzinfo=UTC),
        datetime(2026, 4, 6, tzinfo=UTC),
    )
    inside = period(date(2026, 4, 5), date(2026, 4, 5), "Asia/Kathmandu")
    split = days.split(inside.start, inside.end)
    assert split.first_day == split.last_day


async def test_embedding_usage_is_counted_per_hour_and_per_day(database: Database) -> None:
    organisation, _ = await make_organisation(database, name="Embedding days")
    for tokens in (3, 4):
        usage = EmbeddingUsage()
        usage.add("openai", "text-embedding-3-small", inputs=1, tokens=tokens)
        async with database.transaction() as session:
            await embedding_usage.record(session, organisation.id, usage, purpose=Purpose.KNOWLEDGE)
    async with database.transaction() as session:
        for table in ("analytics_hourly_embeddings", "analytics_daily_embeddings"):
            requests, tokens = (
                await session.execute(
                    text(
                        f"SELECT sum(requests), sum(prompt_tokens) FROM {table}"
                        " WHERE organisation_id = :o"
                    ),
                    {"o": organisation.id},
                )
            ).one()
            assert (requests, tokens) == (2, 7), table
        # A period of whole UTC days (today's among them) reads the daily row.
        today = datetime.now(UTC).date()
        rows = await embedding_usage.usage_rows(
            session,
            organisation.id,
            Filters(period(today - timedelta(days=1), today, "UTC")),
        )
    assert [(row["requests"], row["prompt_tokens"]) for row in rows] == [(2, 7)]
