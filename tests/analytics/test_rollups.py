"""The hourly aggregates: an incremental refresh after changes leaves exactly what a
rebuild from the raw rows gives; the refresh recomputes only the hours that changed; the
periodic sweep defers one refresh per organisation with changes, a burst coalescing into
one job; ``cybergine analytics rebuild`` recomputes history."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import text
from typer.testing import CliRunner

from cybergine.analytics import rebuild, rollups
from cybergine.cli import cli
from cybergine.conversations import intents
from cybergine.conversations.csat_models import CsatSurvey
from cybergine.conversations.models import (
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Sender,
)
from cybergine.db.engine import Database
from cybergine.job_names import JobName
from cybergine.jobs import APP
from cybergine.privacy.retention import MAXIMUM_AGE, Retention
from cybergine.queue import defer
from cybergine.settings import Settings
from tests.analytics import known
from tests.analytics.conftest import Seeded, measure, refresh
from tests.support.conversations import make_conversation, make_message
from tests.support.jobs import run_jobs

TABLES = (
    "analytics_conversations",
    "analytics_daily_customers",
    "analytics_hourly",
    "analytics_hourly_model_usage",
    "analytics_hourly_sources",
    "analytics_hourly_reasons",
    "analytics_daily_model_usage",
    "analytics_daily_sources",
    "analytics_daily_reasons",
)


async def _snapshot(database: Database, organisation_id: uuid.UUID) -> dict[str, list[Any]]:
    found = {}
    async with database.transaction() as session:
        for table in TABLES:
            rows = await session.execute(
                text(
                    f"SELECT to_jsonb(t) - 'id' - 'created_at' - 'updated_at' FROM {table} t"
                    " WHERE organisation_id = :o"
                ),
                {"o": organisation_id},
            )
            # In a known order whatever order the rows are stored in; sums of seconds to
            # the microsecond their parts are measured in (a refresh adds and takes
            # away floating-point numbers in another order than a rebuild sums them).
            found[table] = sorted((_rounded(row[0]) for row in rows), key=json.dumps)
    return found


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    return {name: round(v, 6) if isinstance(v, float) else v for name, v in row.items()}


async def _equals_a_rebuild(database: Database, organisation_id: uuid.UUID) -> None:
    """The organisation's aggregates, as they are, are what a rebuild writes."""
    incremental = await _snapshot(database, organisation_id)
    async with database.transaction() as session:
        for table in (*TABLES, "analytics_refresh_marks"):
            await session.execute(
                text(f"DELETE FROM {table} WHERE organisation_id = :o"), {"o": organisation_id}
            )
    report = await rebuild.rebuild(
        database, idle_hours=known.IDLE_HOURS, organisation_id=organisation_id
    )
    assert report.organisations == 1
    assert await _snapshot(database, organisation_id) == incremental


async def _change(database: Database, seeded: known.Known) -> set[datetime]:
    """A person answers C3, C5 is closed, a new conversation starts: answers the hours
    those conversations began in."""
    now = datetime.now(UTC)
    async with database.transaction() as session:
        c3 = await session.get_one(Conversation, seeded.conversations["C3"])
        await make_message(
            session, c3, direction=Direction.OUTBOUND, sender=Sender.AGENT, created_at=now
        )
        c3.last_message_at, c3.state = now, ConversationState.HUMAN
        c5 = await session.get_one(Conversation, seeded.conversations["C5"])
        c5.state, c5.closed_at = ConversationState.CLOSED, now
        c8 = await make_conversation(
            session, seeded.organisation_id, assistant_id=seeded.assistant_b, created_at=now
        )
        await make_message(session, c8, created_at=now)
        c8.last_message_at = now
        hours = {c.created_at for c in (c3, c5, c8)}
    return {rollups.hour_of(hour) for hour in hours}


async def test_an_incremental_refresh_equals_a_rebuild(seeded: Seeded, database: Database) -> None:
    organisation_id = seeded.known.organisation_id
    before = await _snapshot(database, organisation_id)
    changed_hours = await _change(database, seeded.known)

    # Seeding happened moments ago, so the look-back takes its hours again too; the
    # change's hours are among those recomputed, and nothing else changes.
    assert await refresh(database, seeded.known) >= len(changed_hours)
    assert await _snapshot(database, organisation_id) != before
    await _equals_a_rebuild(database, organisation_id)

    figures = seeded.api.get("/api/v1/analytics/summary", params=seeded.period()).json()["figures"]
    assert figures["conversations"]["value"] == 7
    assert figures["handed_to_person"]["value"] == 4  # C3 now too


async def test_refreshes_after_every_kind_of_change_equal_a_rebuild(
    seeded: Seeded, database: Database
) -> None:
    """Each refresh moves the aggregates by the changed conversations' old and new rows;
    after a run of them, each after another kind of change, they hold what a rebuild
    from the raw rows writes, breakdowns and daily customer counts included."""
    history = seeded.known
    now = datetime.now(UTC)
    moments = iter(now + timedelta(seconds=second) for second in range(1, 100))

    async def answer(conversation: Conversation, item: str, model: str, tokens: int) -> None:
        at = next(moments)
        await make_message(
            session,
            conversation,
            direction=Direction.OUTBOUND,
            sender=Sender.ASSISTANT,
            created_at=at,
            grounded=True,
            sources=[{"item_id": item, "cited": True}, {"item_id": known.K2, "cited": False}],
            llm_provider="openai",
            llm_model=model,
            prompt_tokens=tokens,
            completion_tokens=7,
        )
        conversation.last_message_at = at

    # C5 is closed, and its customer (C1's too) comes back: a new conversation,
    # answered by a model.
    async with database.transaction() as session:
        c5 = await session.get_one(Conversation, history.conversations["C5"])
        c5.state, c5.closed_at = ConversationState.CLOSED, now
        customer = await session.get_one(Customer, c5.customer_id)
        c9 = await make_conversation(
            session,
            history.organisation_id,
            customer=customer,
            assistant_id=history.assistant_a,
            created_at=now,
        )
        await make_message(session, c9, created_at=now)
        await answer(c9, known.K1, "gpt-x", 300)
    assert await refresh(database, history) >= 1
    # C2 moves to the other assistant and is answered by another model, citing another
    # source: its old row leaves assistant A's rows, model and source.
    async with database.transaction() as session:
        c2 = await session.get_one(Conversation, history.conversations["C2"])
        c2.assistant_id = history.assistant_b
        await answer(c2, "another-item", "gpt-y", 50)
    await refresh(database, history)
    # C5's survey is answered (5 stars), C4 is handed to a person for another reason.
    async with database.transaction() as session:
        c5 = await session.get_one(Conversation, history.conversations["C5"])
        session.add(
            CsatSurvey(
                organisation_id=history.organisation_id,
                conversation_id=c5.id,
                customer_id=c5.customer_id,
                rating=5,
                rated_at=next(moments),
            )
        )
        c5.unread_count += 1  # a rating touches its conversation (``csat.rate``)
        c4 = await session.get_one(Conversation, history.conversations["C4"])
        c4.handoff_at, c4.handoff_reason = next(moments), intents.REASON_KEYWORD
        c4.state = ConversationState.WAITING_FOR_HUMAN
    await refresh(database, history)
    # Nothing changed: the look-back reads the same conversations again, and moves nothing.
    before = await _snapshot(database, history.organisation_id)
    await refresh(database, history)
    assert await _snapshot(database, history.organisation_id) == before
    # C9 is closed, C2 goes back to assistant A.
    async with database.transaction() as session:
        c9 = await session.get_one(Conversation, c9.id)
        c9.state, c9.closed_at = ConversationState.CLOSED, next(moments)
        c2 = await session.get_one(Conversation, history.conversations["C2"])
        c2.assistant_id = history.assistant_a
    await refresh(database, history)

    figures = seeded.api.get("/api/v1/analytics/summary", params=seeded.period()).json()
    assert figures["figures"]["conversations"]["value"] == 7
    await _equals_a_rebuild(database, history.organisation_id)


async def test_a_conversation_whose_row_has_expired_stays_counted_once(
    seeded: Seeded, database: Database
) -> None:
    """Rows of figures are kept 12 months, the aggregates 2 years: a conversation whose
    row the purge took keeps its counts when it changes later, and is not added twice."""
    history = seeded.known
    now = datetime.now(UTC)
    async with database.transaction() as session:
        c1 = await session.get_one(Conversation, history.conversations["C1"])
        await make_message(session, c1, created_at=now)
        c1.last_message_at = now
        await session.execute(
            text("DELETE FROM analytics_conversations WHERE conversation_id = :c"), {"c": c1.id}
        )
    # A year and a day on, C1 began before the rows kept: what the purge found.
    later = rollups.Measure(
        now=now + MAXIMUM_AGE[Retention.USAGE_LOG] + timedelta(days=1), idle=measure().idle
    )
    async with database.transaction() as session:
        await rollups.refresh(session, history.organisation_id, later)
    figures = seeded.api.get("/api/v1/analytics/summary", params=seeded.period()).json()
    assert figures["figures"]["conversations"]["value"] == 6


async def test_a_refresh_with_nothing_changed_recomputes_only_the_look_back(
    seeded: Seeded, database: Database
) -> None:
    async with database.transaction() as session:
        await session.execute(
            text("UPDATE analytics_refresh_marks SET refreshed_until = now() + :ahead"),
            {"ahead": rollups.CHANGES_LOOKBACK * 2},
        )
    async with database.transaction() as session:
        measured = rollups.Measure(
            now=datetime.now(UTC) + rollups.CHANGES_LOOKBACK * 2, idle=measure().idle
        )
        assert await rollups.refresh(session, seeded.known.organisation_id, measured) == 0


async def test_the_sweep_refreshes_each_changed_organisation_once(
    seeded: Seeded, database: Database, settings: Settings
) -> None:
    organisation_id = seeded.known.organisation_id
    await _change(database, seeded.known)
    # A burst of changes deferring refreshes leaves one job waiting.
    for _ in range(3):
        async with database.transaction() as session:
            with contextlib.suppress(AlreadyEnqueued):
                async with session.begin_nested():
                    await defer(
                        session,
                        JobName.REFRESH_ANALYTICS,
                        queueing_lock=rollups.refresh_lock(organisation_id),
                        organisation_id=str(organisation_id),
                    )
    async with database.transaction() as session:
        waiting = await session.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = :lock"),
            {"lock": rollups.refresh_lock(organisation_id)},
        )
        assert waiting == 1
        assert organisation_id in await rollups.stale_organisations(session, measure())
    async with database.transaction() as session:
        await defer(session, APP.tasks["analytics:sweep"], timestamp=0)
    await run_jobs(database, settings)
    summary = seeded.api.get("/api/v1/analytics/summary", params=seeded.period()).json()
    assert summary["figures"]["conversations"]["value"] == 7
    async with database.transaction() as session:
        statuses = await session.scalars(
            text(
                "SELECT status::text FROM procrastinate_jobs WHERE task_name = :task"
                " AND args->>'organisation_id' = :o"
            ),
            {"task": JobName.REFRESH_ANALYTICS.value, "o": str(organisation_id)},
        )
        # The burst's one job, and the sweep's (the changes are within its look-back).
        assert set(statuses) == {"succeeded"}


def test_the_rebuild_command_recomputes_an_organisations_history(
    seeded: Seeded, database_url: str, key_env: dict[str, str]
) -> None:
    env = {"CYBERGINE_DATABASE_URL": database_url, "CYBERGINE_LOG_LEVEL": "WARNING", **key_env}
    runner = CliRunner()
    since = (seeded.known.first - timedelta(days=7)).isoformat()
    result = runner.invoke(
        cli,
        ["analytics", "rebuild", "--org", str(seeded.known.organisation_id), "--since", since],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert f"rebuilt 1 organisation(s) from {since} 00:00 UTC" in result.output
    figures = seeded.api.get("/api/v1/analytics/summary", params=seeded.period()).json()["figures"]
    assert figures["conversations"]["value"] == 6

    unknown = runner.invoke(cli, ["analytics", "rebuild", "--org", str(uuid.uuid4())], env=env)
    assert unknown.exit_code == 1
    assert "No organisation" in unknown.output
    bad = runner.invoke(cli, ["analytics", "rebuild", "--since", "last tuesday"], env=env)
    assert bad.exit_code == 2
    assert "not a date" in bad.output


def test_a_rebuild_recomputes_whole_utc_days_from_since() -> None:
    """A day's aggregates are recomputed whole: a rebuild from 14:30 starts at that
    UTC day's midnight, runs in steps of a week, and ends with the day after now's."""
    since = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    now = datetime(2026, 3, 17, 9, 5, tzinfo=UTC)
    steps = rollups.rebuild_steps(since, now)
    assert steps == [
        (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)),
        (datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC)),
        (datetime(2026, 3, 16, tzinfo=UTC), datetime(2026, 3, 18, tzinfo=UTC)),
    ]
