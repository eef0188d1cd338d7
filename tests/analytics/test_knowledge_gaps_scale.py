"""The knowledge gaps report stays fast with thousands of questions: 5,000 collected
questions in 250 groups over four weeks (vectors made up, nothing to embed: the report
reads what the collection stored). The report of the period is read five times; its
median must stay well under the 200 ms the analytics pages answer in."""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import event, text

from cybergine.analytics.periods import Filters, period
from cybergine.analytics.question_report import knowledge_gaps as report
from cybergine.conversations.models import Conversation
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from tests.support.conversations import make_conversation
from tests.support.factories import make_organisation

QUESTIONS = 5000
GROUPS = 250
CONVERSATIONS = 100
DIMENSIONS = 384
# Two today (the groups with their figures, then the examples of all of them); one per
# group listed would be fifty.
STATEMENTS_PER_REPORT = 5


def _vector(values: np.ndarray) -> str:
    return str([float(x) for x in values])


@pytest.mark.slow
async def test_the_report_of_thousands_of_questions_is_fast(database: Database) -> None:
    organisation, _ = await make_organisation(database, name="Busy")
    now = datetime.now(UTC)
    random = np.random.default_rng(17)
    centres = random.normal(size=(GROUPS, DIMENSIONS)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    group_ids = [uuid.uuid4() for _ in range(GROUPS)]
    async with database.transaction() as session:
        conversations: list[Conversation] = [
            await make_conversation(session, organisation.id, created_at=now - timedelta(days=27))
            for _ in range(CONVERSATIONS)
        ]
        await session.execute(
            text(
                "INSERT INTO knowledge_gap_groups (id, organisation_id, centroid, embedding_model,"
                " size) VALUES (:id, :o, CAST(:c AS vector), 'made-up', :n)"
            ),
            [
                {"id": id, "o": organisation.id, "c": _vector(centres[i]), "n": QUESTIONS // GROUPS}
                for i, id in enumerate(group_ids)
            ],
        )
        messages, questions = [], []
        for n in range(QUESTIONS):
            group = n % GROUPS
            asked = now - timedelta(minutes=7 * n)
            conversation = conversations[n % CONVERSATIONS]
            message_id = uuid.uuid4()
            vector = centres[group] + random.normal(scale=0.02, size=DIMENSIONS)
            messages.append(
                {
                    "id": message_id,
                    "o": organisation.id,
                    "c": conversation.id,
                    "text": f"Question {n} about topic {group}?",
                    "at": asked,
                }
            )
            questions.append(
                {
                    "id": uuid.uuid4(),
                    "o": organisation.id,
                    "m": message_id,
                    "c": conversation.id,
                    "g": group_ids[group],
                    "e": _vector(vector / np.linalg.norm(vector)),
                    "at": asked,
                }
            )
        await session.execute(
            text(
                "INSERT INTO messages (id, organisation_id, conversation_id, direction, sender,"
                " type, text, status, send_attempts, created_at, updated_at)"
                " VALUES (:id, :o, :c, 'inbound', 'customer', 'text', :text, 'received', 0,"
                " :at, :at)"
            ),
            messages,
        )
        await session.execute(
            text(
                "INSERT INTO knowledge_gap_questions (id, organisation_id, message_id,"
                " conversation_id, channel, cause, group_id, similarity, embedding,"
                " embedding_model, created_at, updated_at) VALUES (:id, :o, :m, :c, 'whatsapp',"
                " 'fallback', :g, 0.9, CAST(:e AS vector), 'made-up', :at, :at)"
            ),
            questions,
        )
    await _analyse(database)

    today = now.date()
    filters = Filters(period(today - timedelta(days=27), today, "UTC"))
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    timings = []
    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            async with database.transaction() as session:
                started = time.perf_counter()
                found = await report(TenantScope(session, organisation.id), filters)
                timings.append(time.perf_counter() - started)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    median = statistics.median(timings)
    print(f"\nknowledge gaps report, {found.questions} questions: median {median * 1000:.0f} ms")
    assert found.questions == QUESTIONS
    assert len(found.groups) == 50
    assert all(g.questions == QUESTIONS // GROUPS for g in found.groups)
    assert all(len(g.examples) == 5 for g in found.groups)
    # Its cost does not grow with the groups listed: a few statements in all, never one
    # per group (50 listed here). How fast they run is bench/analytics.py's to measure.
    assert len(statements) / 5 <= STATEMENTS_PER_REPORT, statements[: len(statements) // 5]


async def _analyse(database: Database) -> None:
    async with database.autocommit() as session:
        for table in ("messages", "knowledge_gap_questions", "knowledge_gap_groups"):
            await session.execute(text(f"ANALYZE {table}"))
