"""`cybergine demo`'s history: weeks of closed conversations written once into the demo
organisation, the same every time, counted into the aggregates so the Analytics page
shows them, with questions the Top questions and Knowledge gaps pages group, and quick
enough for the command to stay fast."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cybergine.analytics import gaps, question_report, service
from cybergine.analytics.periods import Filters, period
from cybergine.assistants.models import Assistant
from cybergine.cli import cli
from cybergine.conversations.models import Conversation, ConversationState, Message, Sender
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7_time_ms
from cybergine.db.tenancy import TenantScope
from cybergine.demo import DEMO_ASSISTANT_NAME, DEMO_FAQ, seed_demo
from cybergine.demo_history import HISTORY_DAYS, UNANSWERED, seed_history
from cybergine.knowledge.embeddings import LocalMiniLM
from cybergine.shopify import billing
from cybergine.shopify.models import ShopifyShop
from tests.support.conversations import make_conversation
from tests.support.factories import make_organisation

TODAY = date(2026, 3, 16)


async def _shape(database: Database, organisation_id: uuid.UUID) -> list[tuple[object, ...]]:
    """Each conversation's start, outcome and message count, oldest first."""
    async with database.transaction() as session:
        messages = (
            select(func.count()).where(Message.conversation_id == Conversation.id).scalar_subquery()
        )
        rows = await session.execute(
            select(
                Conversation.created_at,
                Conversation.channel,
                Conversation.state,
                Conversation.handoff_at,
                Conversation.closed_at,
                messages,
            )
            .where(Conversation.organisation_id == organisation_id)
            .order_by(Conversation.created_at)
        )
        return [tuple(row) for row in rows]


@pytest.mark.slow
async def test_the_history_is_written_once_the_same_every_time(database: Database) -> None:
    async with database.transaction() as session:
        demo = await seed_demo(session)
        started = time.perf_counter()
        written = await seed_history(session, uuid.UUID(demo.organisation_id), TODAY)
        seconds = time.perf_counter() - started
    print(f"demo history: {written} conversations in {seconds:.2f} s")
    assert written > 300
    async with database.transaction() as session:
        assert await seed_history(session, demo.organisation_id, TODAY) == 0  # type: ignore[arg-type]

    # Another organisation with the demo's assistant gets the very same history.
    other, _ = await make_organisation(database, name="Second demo")
    async with database.transaction() as session:
        TenantScope(session, other.id).add(Assistant(name=DEMO_ASSISTANT_NAME))
        await session.flush()
        assert await seed_history(session, other.id, TODAY) == written
    first, second = (
        await _shape(database, uuid.UUID(demo.organisation_id)),
        await _shape(database, other.id),
    )
    assert sorted(first, key=repr) == sorted(second, key=repr)
    assert {row[2] for row in first} == {ConversationState.CLOSED}
    assert first[0][0] >= datetime(2026, 2, 1, 23, tzinfo=UTC)  # 42 days back, in Paris
    assert first[-1][0] < datetime(2026, 3, 16, tzinfo=UTC)  # up to yesterday


async def test_the_historys_ids_sort_with_their_times(database: Database) -> None:
    """Back-dated rows get the UUIDv7 of their own time, as a live row gets now's: each
    conversation's messages sort by id as they were written (a customer's request and
    the hand-off notice it caused share a millisecond), and its newest is its
    last_message_id."""
    async with database.transaction() as session:
        demo = await seed_demo(session)
        organisation_id = uuid.UUID(demo.organisation_id)
        await seed_history(session, organisation_id, TODAY)
    async with database.transaction() as session:
        conversations = (
            await session.scalars(
                select(Conversation).where(Conversation.organisation_id == organisation_id)
            )
        ).all()
        messages = (
            await session.scalars(
                select(Message)
                .where(Message.organisation_id == organisation_id)
                .order_by(Message.id)
            )
        ).all()

    def ms(moment: datetime) -> int:
        return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)

    threads: dict[uuid.UUID, list[Message]] = {c.id: [] for c in conversations}
    for message in messages:
        assert uuid7_time_ms(message.id) == ms(message.created_at)
        threads[message.conversation_id].append(message)
    ties = 0
    for conversation in conversations:
        assert uuid7_time_ms(conversation.id) == ms(conversation.created_at)
        thread = threads[conversation.id]
        assert conversation.last_message_id == thread[-1].id
        for earlier, later in pairwise(thread):
            assert earlier.created_at <= later.created_at
            if earlier.created_at == later.created_at:
                ties += 1
                assert (earlier.sender, later.sender) == (Sender.CUSTOMER, Sender.SYSTEM)
    assert ties > 0  # the case the ordering within a millisecond is for


async def test_the_analytics_show_the_history(database: Database) -> None:
    async with database.transaction() as session:
        demo = await seed_demo(session)
        await seed_history(session, uuid.UUID(demo.organisation_id), TODAY)
    async with database.transaction() as session:
        scope = TenantScope(session, uuid.UUID(demo.organisation_id))
        last = TODAY - timedelta(days=1)
        found = await service.summary(
            scope, Filters(period(last - timedelta(days=27), last, "Europe/Paris"))
        )
    figures = found.current.headline()
    assert (figures["conversations"] or 0) > 200
    assert 0.5 < (figures["containment_rate"] or 0) < 0.8
    # Every closed conversation was surveyed; about two in five customers answered.
    assert figures["csat_surveys_sent"] == figures["conversations"]
    assert 0.3 < (figures["csat_response_rate"] or 0) < 0.55
    assert 0.6 < (figures["csat_score"] or 0) < 0.95
    assert (figures["handed_to_person"] or 0) > 20
    assert (figures["fallbacks"] or 0) > 0
    assert (figures["human_first_response_seconds"] or 0) > 60
    assert found.previous.headline()["conversations"]  # the weeks before have some too
    assert HISTORY_DAYS >= 28 + 7


async def test_the_history_fills_the_top_questions_and_knowledge_gaps(database: Database) -> None:
    async with database.transaction() as session:
        demo = await seed_demo(session)
        organisation_id = uuid.UUID(demo.organisation_id)
        await seed_history(session, organisation_id, TODAY)
    async with database.transaction() as session:
        await gaps.collect(session, organisation_id, LocalMiniLM(), datetime.now(UTC))
    filters = Filters(period(TODAY - timedelta(days=HISTORY_DAYS), TODAY, "Europe/Paris"))
    async with database.transaction() as session:
        scope = TenantScope(session, organisation_id)
        top = await question_report.top_questions(scope, filters)
        unanswered = await question_report.knowledge_gaps(scope, filters)
    # The FAQ's questions, answered from it, are the most asked.
    faq = {question for question, _ in DEMO_FAQ}
    assert top.groups[0].representative in faq
    answered = [g for g in top.groups if g.representative in faq]
    assert len(answered) >= 6
    assert all(g.grounded > g.fallbacks + g.handoffs for g in answered)
    # What it does not cover is the gaps: shipping to Canada, gift cards, vegan leather.
    assert len(unanswered.groups) == 3
    assert {g.representative for g in unanswered.groups} <= set(UNANSWERED)
    assert sum(g.questions for g in unanswered.groups) == unanswered.questions > 20


def test_the_demo_command_seeds_the_history_once(
    database_url: str, key_env: dict[str, str]
) -> None:
    runner = CliRunner()
    env = {"CYBERGINE_DATABASE_URL": database_url, "CYBERGINE_LOG_LEVEL": "WARNING", **key_env}
    started = time.perf_counter()
    first = runner.invoke(cli, ["demo"], env=env)
    seconds = time.perf_counter() - started
    print(f"cybergine demo: {seconds:.2f} s")
    assert first.exit_code == 0, first.output
    assert "Demo history:" in first.output
    second = runner.invoke(cli, ["demo"], env=env)
    assert second.exit_code == 0, second.output
    assert "Demo history:" not in second.output


async def test_the_demo_assistant_still_answers_at_the_end_of_a_month(database: Database) -> None:
    """The history fills a month: on the free plan the demo shop would have used its
    allowance within days, and the demo assistant would answer no one (a demo seeded by
    an earlier version, with no plan, gets one when `cybergine demo` runs again)."""
    last_day = date(2026, 3, 31)
    async with database.transaction() as session:
        demo = await seed_demo(session)
        organisation_id = uuid.UUID(demo.organisation_id)
        assert await seed_history(session, organisation_id, last_day) > 0
        shop = await session.scalar(
            select(ShopifyShop).where(ShopifyShop.organisation_id == organisation_id)
        )
        assert shop is not None
        assert billing.current_plan(shop).conversations_per_month > 31 * 17
        shop.plan_name = shop.subscription_status = None
    async with database.transaction() as session:
        await seed_demo(session)
    async with database.transaction() as session:
        new = await make_conversation(
            session, organisation_id, created_at=datetime(2026, 3, 31, 20, tzinfo=UTC)
        )
        month = await session.scalar(
            select(func.count()).where(
                Conversation.organisation_id == organisation_id,
                Conversation.created_at >= datetime(2026, 3, 1, tzinfo=UTC),
            )
        )
        assert month > billing.FREE.conversations_per_month
        assert not await billing.beyond_allowance(session, organisation_id, new.id)
