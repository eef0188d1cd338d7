"""Knowledge gaps on the hand-built history of ``gap_history.py``: which questions are
collected, how they are grouped by meaning (the local embedding model), what a report of
the period counts, and that erasure and the drill-down reach them."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from cybergine.analytics import gaps
from cybergine.analytics.gap_models import GapGroup, GapMark, GapQuestion
from cybergine.analytics.periods import Filters, period
from cybergine.analytics.question_report import Group
from cybergine.analytics.question_report import knowledge_gaps as report
from cybergine.conversations.models import Channel, Conversation
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.job_names import JobName
from cybergine.jobs import APP
from cybergine.knowledge.embeddings import LocalMiniLM
from cybergine.privacy.erasure import erase_customer
from cybergine.privacy.export import export_customer
from cybergine.queue import defer
from cybergine.settings import Settings
from tests.analytics import gap_history
from tests.analytics.gap_history import GIFT_CARDS, SHIPPING, GapHistory, ask
from tests.support.factories import make_organisation
from tests.support.jobs import run_jobs

# 5 shipping + 3 gift cards gaps in the period + 1 gift card question before it; 1 shipping,
# 4 returns and 2 other questions answered from a source.
COLLECTED = 16


@pytest.fixture(scope="module")
def minilm() -> LocalMiniLM:
    return LocalMiniLM()


@dataclass
class World:
    history: GapHistory
    other_organisation_id: uuid.UUID
    minilm: LocalMiniLM
    database: Database

    async def collect(self, organisation_id: uuid.UUID | None = None) -> int:
        async with self.database.transaction() as session:
            found = await gaps.collect(
                session,
                organisation_id or self.history.organisation_id,
                self.minilm,
                datetime.now(UTC),
            )
        assert found.done
        return found.added

    def filters(self, **extra: object) -> Filters:
        today = datetime.now(UTC).date()
        return Filters(period(self.history.first.date(), today, "UTC"), **extra)  # type: ignore[arg-type]

    async def report(self, **extra: object) -> list[Group]:
        async with self.database.transaction() as session:
            found = await report(
                TenantScope(session, self.history.organisation_id), self.filters(**extra)
            )
        return found.groups


@pytest.fixture
async def world(database: Database, minilm: LocalMiniLM) -> World:
    organisation, _ = await make_organisation(database, name="Gaps")
    other, _ = await make_organisation(database, name="Other")
    async with database.transaction() as session:
        history = await gap_history.seed(session, organisation.id, other.id, datetime.now(UTC))
    return World(history, other.id, minilm, database)


def _by_meaning(groups: list[Group]) -> dict[str, Group]:
    found = {}
    for group in groups:
        texts = {e.question for e in group.examples} | {group.representative}
        if texts & set(SHIPPING):
            found["shipping"] = group
        if texts & set(GIFT_CARDS):
            found["gift_cards"] = group
    return found


async def test_fallbacks_of_two_meanings_make_two_groups_with_their_counts(world: World) -> None:
    assert await world.collect() == COLLECTED
    groups = await world.report()
    assert len(groups) == 2
    meanings = _by_meaning(groups)
    shipping, gifts = meanings["shipping"], meanings["gift_cards"]
    assert groups == [shipping, gifts]  # most asked first
    assert (shipping.questions, shipping.conversations) == (5, 4)
    assert (shipping.fallbacks, shipping.handoffs) == (4, 1)
    assert {e.question for e in shipping.examples} == set(SHIPPING)
    assert shipping.representative in SHIPPING
    assert (gifts.questions, gifts.conversations, gifts.handoffs) == (3, 3, 0)
    assert [e.question for e in gifts.examples] == list(reversed(GIFT_CARDS))  # newest first
    monday = world.history.first
    assert shipping.first_seen == monday + timedelta(hours=9)
    assert shipping.last_seen == monday + timedelta(days=3, hours=12)
    assert gifts.first_seen == monday + timedelta(hours=15)
    assert gifts.answered_at is None
    assert gifts.asked_since_answer == 0


async def test_a_second_collection_adds_nothing_and_a_new_question_joins_its_group(
    world: World,
) -> None:
    await world.collect()
    assert await world.collect() == 0
    async with world.database.transaction() as session:
        conversation = await session.scalar(
            select(Conversation).where(Conversation.id.in_(world.history.gift_conversations))
        )
        assert conversation is not None
        await ask(session, conversation, datetime.now(UTC), "Do you offer gift cards?")
    assert await world.collect() == 1
    gifts = _by_meaning(await world.report())["gift_cards"]
    assert gifts.questions == 4
    assert gifts.examples[0].question == "Do you offer gift cards?"


async def test_filters_narrow_by_assistant_and_channel(world: World) -> None:
    await world.collect()
    by_b = await world.report(assistant_id=world.history.assistant_b)
    assert [(g.questions, g.examples[0].question) for g in by_b] == [(1, SHIPPING[1])]
    webchat = await world.report(channel=Channel.WEBCHAT)
    assert [g.questions for g in webchat] == [1]
    whatsapp = _by_meaning(await world.report(channel=Channel.WHATSAPP))
    assert (whatsapp["shipping"].questions, whatsapp["gift_cards"].questions) == (4, 3)


async def test_another_organisations_questions_stay_its_own(world: World) -> None:
    await world.collect()
    await world.collect(world.other_organisation_id)
    async with world.database.transaction() as session:
        counts = dict(
            (
                await session.execute(
                    select(GapQuestion.organisation_id, func.count()).group_by(
                        GapQuestion.organisation_id
                    )
                )
            ).all()
        )
    assert counts == {world.history.organisation_id: COLLECTED, world.other_organisation_id: 1}
    shipping = _by_meaning(await world.report())["shipping"]
    assert shipping.questions == 5  # the other organisation's question is not in it


async def test_answered_groups_come_after_open_ones_and_count_questions_since(
    world: World,
) -> None:
    await world.collect()
    shipping = _by_meaning(await world.report())["shipping"]
    async with world.database.transaction() as session:
        assert await gaps.mark_answered(
            TenantScope(session, world.history.organisation_id), shipping.id, None
        )
        # Another organisation cannot mark it.
        assert not await gaps.mark_answered(
            TenantScope(session, world.other_organisation_id), shipping.id, None
        )
    groups = await world.report()
    assert [g.id for g in groups][-1] == shipping.id
    assert groups[-1].answered_at is not None
    assert groups[-1].asked_since_answer == 0
    async with world.database.transaction() as session:
        conversation = await session.get(
            Conversation, next(iter(world.history.shipping_conversations))
        )
        assert conversation is not None
        await ask(session, conversation, datetime.now(UTC), "Do you ship to Canada?")
    await world.collect()
    answered = (await world.report())[-1]
    assert (answered.id, answered.questions, answered.asked_since_answer) == (shipping.id, 6, 1)


async def test_drill_down_lists_the_conversations_behind_a_group(world: World) -> None:
    await world.collect()
    shipping = _by_meaning(await world.report())["shipping"]
    among = gaps.group_conversations(world.history.organisation_id, shipping.id, world.filters())
    async with world.database.transaction() as session:
        found: set[uuid.UUID] = set(
            (await session.execute(select(among.c.conversation_id))).scalars()
        )
    assert found == world.history.shipping_conversations


async def test_without_an_embedding_model_nothing_is_collected_and_history_waits(
    world: World,
) -> None:
    async with world.database.transaction() as session:
        found = await gaps.collect(session, world.history.organisation_id, None, datetime.now(UTC))
        assert found.added == 0
        assert await session.scalar(select(func.count()).select_from(GapMark)) == 0
    assert await world.collect() == COLLECTED


async def test_questions_whose_group_was_purged_join_a_group_again(world: World) -> None:
    await world.collect()
    async with world.database.transaction() as session:
        await session.execute(text("DELETE FROM knowledge_gap_groups"))
    assert await world.collect() == 0
    groups = await world.report()
    assert sorted(g.questions for g in groups) == [3, 5]
    async with world.database.transaction() as session:
        orphans = await session.scalar(
            select(func.count()).select_from(GapQuestion).where(GapQuestion.group_id.is_(None))
        )
        assert orphans == 0
        before = await session.scalar(select(func.count()).select_from(GapGroup))
        # A group whose questions all left (their messages purged) goes at the next
        # collection.
        await session.execute(
            text(
                "DELETE FROM messages WHERE id IN"
                " (SELECT message_id FROM knowledge_gap_questions WHERE group_id = :g)"
            ),
            {"g": groups[1].id},
        )
    await world.collect()
    async with world.database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(GapGroup)) == before - 1


async def test_the_sweep_finds_organisations_with_changes_since_their_mark(world: World) -> None:
    async with world.database.transaction() as session:
        stale = set(await gaps.stale_organisations(session))
    assert {world.history.organisation_id, world.other_organisation_id} <= stale
    await world.collect()
    async with world.database.transaction() as session:
        stale = set(await gaps.stale_organisations(session))
    assert world.history.organisation_id not in stale
    assert world.other_organisation_id in stale


async def test_a_customers_export_shows_their_questions_and_erasure_removes_them(
    world: World,
) -> None:
    await world.collect()
    organisation_id = world.history.organisation_id
    async with world.database.transaction() as session:
        conversation = await session.get(Conversation, next(iter(world.history.gift_conversations)))
        assert conversation is not None
        customer_id = conversation.customer_id
        scope = TenantScope(session, organisation_id)
        exported = await export_customer(scope, None, customer_id)
    (question,) = exported["knowledge_gap_questions"]
    assert question["cause"] == "fallback"
    assert question["embedding_model"] == world.minilm.name
    assert len(question["embedding"]) == world.minilm.dimensions
    json.dumps(exported)  # JSON-ready, the vector included

    async with world.database.transaction() as session:
        await erase_customer(TenantScope(session, organisation_id), None, customer_id)
    async with world.database.transaction() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(GapQuestion)
            .where(GapQuestion.conversation_id == conversation.id)
        )
    assert left == 0
    await world.collect()
    gifts = _by_meaning(await world.report())["gift_cards"]
    assert gifts.questions == 2


async def test_the_sweep_and_the_collection_jobs_collect_every_changed_organisation(
    world: World, settings: Settings
) -> None:
    async with world.database.transaction() as session:
        await defer(session, APP.tasks["analytics:knowledge_gaps_sweep"], timestamp=0)
    statuses = await _run_collections(world, settings)
    async with world.database.transaction() as session:
        counts = dict(
            (
                await session.execute(
                    select(GapQuestion.organisation_id, func.count()).group_by(
                        GapQuestion.organisation_id
                    )
                )
            ).all()
        )
    found = (
        counts.get(world.history.organisation_id),
        counts.get(world.other_organisation_id),
        set(statuses),
    )
    assert found == (COLLECTED, 1, {"succeeded"}), statuses


async def _spread_changes(world: World) -> None:
    """Each conversation last changed when it began, but one that changed just now,
    whose fallback is older than a window."""
    async with world.database.transaction() as session:
        await session.execute(
            text("UPDATE conversations SET updated_at = created_at WHERE organisation_id = :o"),
            {"o": world.history.organisation_id},
        )
        await session.execute(
            text("UPDATE conversations SET updated_at = now() WHERE id = :id"),
            {"id": min(world.history.shipping_conversations)},
        )


async def test_a_first_collection_reads_history_a_window_at_a_time(world: World) -> None:
    organisation_id = world.history.organisation_id
    await _spread_changes(world)
    runs: list[gaps.Collected] = []
    while not runs or not runs[-1].done:
        async with world.database.transaction() as session:
            runs.append(
                await gaps.collect(session, organisation_id, world.minilm, datetime.now(UTC))
            )
        assert len(runs) < 10
    assert len(runs) >= 2
    assert sum(run.added for run in runs) == COLLECTED
    meanings = _by_meaning(await world.report())
    assert (meanings["shipping"].questions, meanings["gift_cards"].questions) == (5, 3)


async def test_a_collection_job_with_history_left_defers_the_next_window(
    world: World, settings: Settings
) -> None:
    await _spread_changes(world)
    async with world.database.transaction() as session:
        await defer(
            session,
            JobName.COLLECT_KNOWLEDGE_GAPS,
            organisation_id=str(world.history.organisation_id),
        )
    statuses = await _run_collections(world, settings)
    assert len(statuses) >= 2
    assert set(statuses) == {"succeeded"}
    assert await world.collect() == 0  # everything was collected by the chain
    assert sorted(g.questions for g in await world.report()) == [3, 5]


async def _run_collections(world: World, settings: Settings) -> list[str]:
    """Run the jobs until no collection waits (a worker run without waiting may stop
    before a job its last job deferred); the collections' statuses."""
    statuses: list[str] = []
    for _ in range(10):
        await run_jobs(world.database, settings)
        async with world.database.transaction() as session:
            statuses = list(
                await session.scalars(
                    text("SELECT status::text FROM procrastinate_jobs WHERE task_name = :task"),
                    {"task": JobName.COLLECT_KNOWLEDGE_GAPS.value},
                )
            )
        if "todo" not in statuses:
            break
    return statuses
