"""The questions' daily and monthly counts (``knowledge_gap_days``, ``_months``) and the
reports read from them: the rows the triggers keep as questions are written, regrouped
and deleted are the rows the rebuild sums from scratch, the monthly rows are always the
daily rows' sums, and the top questions and knowledge gaps of any period,
in any timezone, with any filter, say what counting the raw questions says (a
conversation once per group, however many times it asked, before the period or in it;
for the gaps, however many times it asked a question of a gap's cause).

Questions are written straight to the table, as the collection writes them (vectors
made up: nothing here is embedded), spread over three weeks around Europe's change to
summer time, several per conversation and group, each with its conversation's assistant
and channel."""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from cybergine.analytics import gaps, rebuild
from cybergine.analytics.periods import Filters, period
from cybergine.analytics.question_report import (
    KNOWLEDGE_GAPS,
    TOP_QUESTIONS,
    Group,
    Kind,
    knowledge_gaps,
    report,
)
from cybergine.conversations.models import Channel
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from tests.support.conversations import make_conversation
from tests.support.factories import make_organisation

FIRST = datetime(2026, 3, 18, tzinfo=UTC)
DAYS = 75  # to June: whole months (April, May) and the days around them
GROUPS = 5
CONVERSATIONS = 14
QUESTIONS = 300
ZONES = ("UTC", "Europe/Paris", "Asia/Kathmandu", "America/St_Johns")
_VECTOR = str([1.0] + [0.0] * 383)


@dataclass
class World:
    database: Database
    organisation_id: uuid.UUID
    assistants: list[uuid.UUID]
    groups: list[uuid.UUID]
    conversations: list[uuid.UUID]
    random: random.Random
    # Each conversation's assistant and channel, which its questions carry (the
    # collection writes the conversation's).
    profiles: dict[uuid.UUID, tuple[uuid.UUID | None, str]]


async def _ask(world: World, count: int) -> None:
    """``count`` questions at random moments, in random conversations and groups, linked
    to their conversation's previous ones as the collection links them."""
    touched = set()
    async with world.database.transaction() as session:
        for _ in range(count):
            asked = FIRST + timedelta(minutes=world.random.randrange(DAYS * 24 * 60))
            conversation = world.random.choice(world.conversations)
            message_id = uuid.uuid4()
            await session.execute(
                text(
                    "INSERT INTO messages (id, organisation_id, conversation_id, direction,"
                    " sender, type, text, status, send_attempts, created_at, updated_at)"
                    " VALUES (:id, :o, :c, 'inbound', 'customer', 'text', 'Where is it?',"
                    " 'received', 0, :at, :at)"
                ),
                {"id": message_id, "o": world.organisation_id, "c": conversation, "at": asked},
            )
            await session.execute(
                text(
                    "INSERT INTO knowledge_gap_questions (id, organisation_id, message_id,"
                    " conversation_id, assistant_id, channel, cause, group_id, similarity,"
                    " embedding, embedding_model, created_at, updated_at) VALUES (:id, :o, :m,"
                    " :c, :a, CAST(:channel AS channel), :cause, :g, 0.9, CAST(:e AS vector),"
                    " 'made-up', :at, :at)"
                ),
                {
                    "id": uuid.uuid4(),
                    "o": world.organisation_id,
                    "m": message_id,
                    "c": conversation,
                    "a": world.profiles[conversation][0],
                    "channel": world.profiles[conversation][1],
                    "cause": world.random.choice(gaps.CAUSES),
                    "g": world.random.choice(world.groups),
                    "e": _VECTOR,
                    "at": asked,
                },
            )
            touched.add(conversation)
        await gaps.link_previous(session, world.organisation_id, touched)


@pytest.fixture
async def world(database: Database) -> World:
    organisation, _ = await make_organisation(database, name="Gappy")
    world = World(database, organisation.id, [], [], [], random.Random(29), {})
    async with database.transaction() as session:
        for name in ("Shop", "Night"):
            world.assistants.append(uuid.uuid4())
            await session.execute(
                text(
                    "INSERT INTO assistants (id, organisation_id, name, persona, instructions,"
                    " tone, languages, greeting, fallback_message, ai_disclosure,"
                    " knowledge_collections, llm_provider, llm_model, temperature, max_tokens,"
                    " redact_personal_data, handoff_keywords, active, widget_key,"
                    " allowed_origins, widget) VALUES (:id, :o, :name, '', '', 'friendly',"
                    " '{en}', '', 'Sorry.', 'AI.', '{}', 'extractive', 'none', 0.2, 500, true,"
                    " '{}', true, :key, '{}', '{}')"
                ),
                {"id": world.assistants[-1], "o": organisation.id, "name": name, "key": name},
            )
        for _ in range(GROUPS):
            world.groups.append(uuid.uuid4())
            await session.execute(
                text(
                    "INSERT INTO knowledge_gap_groups (id, organisation_id, centroid,"
                    " embedding_model, size) VALUES (:id, :o, CAST(:c AS vector), 'made-up', 0)"
                ),
                {"id": world.groups[-1], "o": organisation.id, "c": _VECTOR},
            )
        for _ in range(CONVERSATIONS):
            conversation = await make_conversation(session, organisation.id, created_at=FIRST)
            world.conversations.append(conversation.id)
            world.profiles[conversation.id] = (
                world.random.choice([*world.assistants, None]),
                world.random.choice(list(Channel)).value,
            )
    await _ask(world, QUESTIONS)
    return world


async def _rows(world: World, table: str, period: str) -> list[tuple[Any, ...]]:
    async with world.database.transaction() as session:
        rows = await session.execute(
            text(
                f"SELECT group_id, {period}, previous_day, previous_gap_day, assistant_id,"
                " channel, cause, questions, first_seen, last_seen, created_at"
                f" FROM {table} WHERE organisation_id = :o"
            ),
            {"o": world.organisation_id},
        )
        return sorted((tuple(row) for row in rows), key=_order)


async def _days(world: World) -> list[tuple[Any, ...]]:
    """The daily rows, and the check that the monthly rows are their sums."""
    days = await _rows(world, "knowledge_gap_days", "day")
    assert await _rows(world, "knowledge_gap_months", "month") == _summed_per_month(days)
    return days


def _summed_per_month(days: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """What the monthly rows must be: the daily rows summed per UTC month, a previous
    question's day inside the row's own month counting as the month's first."""
    months: dict[tuple[Any, ...], list[Any]] = {}
    for group, day, previous, previous_gap, assistant, channel, cause, n, first, last, _ in days:
        month = day.astimezone(UTC).replace(day=1)

        def collapsed(moment: datetime | None, month: datetime = month) -> datetime | None:
            return None if moment is None else max(moment, month)

        key = (
            group,
            month,
            collapsed(previous),
            collapsed(previous_gap),
            assistant,
            channel,
            cause,
        )
        found = months.setdefault(key, [0, first, last])
        found[0] += n
        found[1], found[2] = min(found[1], first), max(found[2], last)
    return sorted(
        (
            (*key, n, first, last, (key[1] + timedelta(days=32)).replace(day=1))
            for key, (n, first, last) in months.items()
        ),
        key=_order,
    )


def _order(row: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(str(value) for value in row)


async def _rebuilt(world: World) -> list[tuple[Any, ...]]:
    """The rows ``cybergine analytics rebuild`` writes (its hourly aggregates' part kept
    to a day: this organisation has no conversation to count)."""
    await rebuild.rebuild(
        world.database,
        idle_hours=24,
        organisation_id=world.organisation_id,
        since=datetime.now(UTC) - timedelta(days=1),
    )
    return await _days(world)


async def test_the_kept_rows_are_the_rebuilt_ones_through_inserts_regroupings_and_deletions(
    world: World,
) -> None:
    kept = await _days(world)
    assert sum(row[7] for row in kept) == QUESTIONS
    assert any(row[2] is not None for row in kept)  # some conversations asked again
    # ... and some asked a gap's question again after a grounded one in between.
    assert any(row[3] is not None and row[3] != row[2] for row in kept)
    assert kept == await _rebuilt(world)

    async with world.database.transaction() as session:
        # Regrouped (as the collection regroups), then linked again.
        moved = await session.execute(
            text(
                "UPDATE knowledge_gap_questions SET group_id = :g WHERE id IN (SELECT id"
                " FROM knowledge_gap_questions WHERE organisation_id = :o ORDER BY id LIMIT 30)"
                " RETURNING conversation_id"
            ),
            {"g": world.groups[0], "o": world.organisation_id},
        )
        await gaps.link_previous(session, world.organisation_id, set(moved.scalars()))
        # A conversation erased with its messages, and a group gone (its questions
        # left without one).
        await session.execute(
            text("DELETE FROM conversations WHERE id = :c"), {"c": world.conversations.pop()}
        )
        await session.execute(
            text("DELETE FROM knowledge_gap_groups WHERE id = :g"), {"g": world.groups.pop()}
        )
    await _ask(world, 40)
    kept = await _days(world)
    assert all(row[7] > 0 for row in kept)
    assert kept == await _rebuilt(world)

    async with world.database.transaction() as session:
        await session.execute(
            text("DELETE FROM knowledge_gap_questions WHERE organisation_id = :o"),
            {"o": world.organisation_id},
        )
    assert await _days(world) == []


async def _questions(world: World) -> list[Any]:
    async with world.database.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT group_id, conversation_id, assistant_id, channel, cause, created_at"
                " FROM knowledge_gap_questions WHERE organisation_id = :o"
                " AND group_id IS NOT NULL"
            ),
            {"o": world.organisation_id},
        )
        return list(rows)


def _counted(
    questions: list[Any], filters: Filters, answered: dict[uuid.UUID, datetime], kind: Kind
) -> list[tuple[Any, ...]]:
    """Each group's figures counted from its raw questions of ``kind``'s causes, in the
    report's order."""
    start, end = filters.period.start, filters.period.end
    chosen = [
        q
        for q in questions
        if start <= q.created_at < end
        and q.cause in kind.causes
        and (filters.assistant_id is None or q.assistant_id == filters.assistant_id)
        and (filters.channel is None or q.channel == filters.channel.value)
    ]
    figures = []
    for group in {q.group_id for q in chosen}:
        mine = [q for q in chosen if q.group_id == group]
        since = answered.get(group)
        figures.append(
            (
                group,
                len(mine),
                len({q.conversation_id for q in mine}),
                sum(q.cause == gaps.GROUNDED for q in mine),
                sum(q.cause == gaps.FALLBACK for q in mine),
                sum(q.cause == gaps.HANDOFF for q in mine),
                min(q.created_at for q in mine),
                max(q.created_at for q in mine),
                0 if since is None else sum(q.created_at > since for q in mine),
            )
        )
    figures.sort(
        key=lambda f: (kind.answered_last and f[0] in answered, -f[1], -f[7].timestamp(), str(f[0]))
    )
    return figures


def _reported(groups: list[Group]) -> list[tuple[Any, ...]]:
    return [
        (
            g.id,
            g.questions,
            g.conversations,
            g.grounded,
            g.fallbacks,
            g.handoffs,
            g.first_seen,
            g.last_seen,
            g.asked_since_answer,
        )
        for g in groups
    ]


async def test_every_period_filter_and_zone_reports_what_the_raw_questions_say(
    world: World,
) -> None:
    answered = {world.groups[1]: FIRST + timedelta(days=9, hours=7, minutes=13)}
    async with world.database.transaction() as session:
        await session.execute(
            text("UPDATE knowledge_gap_groups SET answered_at = :at WHERE id = :g"),
            {"g": world.groups[1], "at": answered[world.groups[1]]},
        )
    questions = await _questions(world)
    first = FIRST.date()
    choices = world.random
    periods = [(first, first + timedelta(days=DAYS))]  # all of it
    periods += [(first + timedelta(days=5), first + timedelta(days=5))]  # one day
    for _ in range(10):
        start = first + timedelta(days=choices.randrange(DAYS))
        periods.append((start, start + timedelta(days=choices.randrange(1, 60))))
    checked = 0
    for zone in ZONES:
        for since, until in periods:
            for narrowed, kind in itertools.product(
                ({}, {"assistant_id": world.assistants[0]}, {"channel": Channel.WEBCHAT}),
                (TOP_QUESTIONS, KNOWLEDGE_GAPS),
            ):
                filters = Filters(period(since, until, zone), **narrowed)  # type: ignore[arg-type]
                async with world.database.transaction() as session:
                    found = await report(
                        TenantScope(session, world.organisation_id), filters, kind, limit=50
                    )
                expected = _counted(questions, filters, answered, kind)
                assert _reported(found.groups) == expected, (zone, since, until, narrowed, kind)
                assert found.questions == sum(f[1] for f in expected)
                checked += found.questions
    assert checked > 0
    # Conversations that asked a group again within a period were counted once.
    assert any(g.conversations < g.questions for g in (await _whole(world)).groups)


async def _whole(world: World) -> Any:
    filters = Filters(period(FIRST.date(), date(2026, 4, 30), "UTC"))
    async with world.database.transaction() as session:
        return await knowledge_gaps(TenantScope(session, world.organisation_id), filters)
