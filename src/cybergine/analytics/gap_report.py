"""The knowledge gaps of a period (``analytics.gaps`` says what they are): the groups of
questions asked in it, narrowed by assistant and channel, most asked first, answered
groups after the open ones."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from cybergine.analytics.gaps import DEFAULT_GROUPS, EXAMPLES
from cybergine.analytics.periods import Filters
from cybergine.db.tenancy import TenantScope

# The questions of a group a representative is chosen among: its newest of the period.
CANDIDATES = 200


@dataclass(frozen=True)
class Example:
    question: str
    asked_at: datetime
    conversation_id: uuid.UUID
    cause: str


@dataclass(frozen=True)
class Group:
    id: uuid.UUID
    questions: int
    conversations: int
    fallbacks: int
    handoffs: int
    first_seen: datetime
    last_seen: datetime
    representative: str
    examples: list[Example]
    answered_at: datetime | None
    answer_item_id: uuid.UUID | None
    asked_since_answer: int


@dataclass(frozen=True)
class Report:
    questions: int  # every gap question of the period, in all groups
    groups: list[Group]


_QUESTIONS = """
    SELECT q.*
      FROM knowledge_gap_questions q
     WHERE q.organisation_id = :organisation_id
       AND q.created_at >= :start AND q.created_at < :end
       AND q.group_id IS NOT NULL AND ({where})
"""

_GROUPS = """
    SELECT g.id, count(*) AS questions, count(DISTINCT q.conversation_id) AS conversations,
           count(*) FILTER (WHERE q.cause = 'fallback') AS fallbacks,
           count(*) FILTER (WHERE q.cause = 'handoff') AS handoffs,
           min(q.created_at) AS first_seen, max(q.created_at) AS last_seen,
           g.answered_at, g.answer_item_id,
           count(*) FILTER (WHERE q.created_at > g.answered_at) AS asked_since_answer,
           -- Every group's questions, listed or not (the window runs before the LIMIT):
           -- the period's total, without reading its questions a second time.
           sum(count(*)) OVER () AS total
      FROM ({questions}) AS q
      JOIN knowledge_gap_groups g ON g.id = q.group_id
     GROUP BY g.id
     ORDER BY g.answered_at IS NOT NULL, count(*) DESC, max(q.created_at) DESC, g.id
     LIMIT :limit
"""

# Per listed group, among its newest ``CANDIDATES`` questions of the period (read newest
# first by the group's index, so a group's size does not matter): the newest few, and
# the one nearest its centroid now, its representative.
_EXAMPLES = """
    SELECT x.group_id, m.text, x.created_at, x.conversation_id, x.cause, x.newest, x.nearest
      FROM (SELECT r.*,
                   row_number() OVER (PARTITION BY r.group_id
                                      ORDER BY r.created_at DESC, r.id DESC) AS newest,
                   row_number() OVER (PARTITION BY r.group_id
                                      ORDER BY r.embedding <=> g.centroid, r.created_at DESC,
                                               r.id) AS nearest
              FROM unnest(CAST(:groups AS uuid[])) AS chosen(id)
              JOIN knowledge_gap_groups g ON g.id = chosen.id
             CROSS JOIN LATERAL (
                   SELECT q.id, q.group_id, q.message_id, q.created_at, q.conversation_id,
                          q.cause, q.embedding
                     FROM knowledge_gap_questions q
                    WHERE q.group_id = chosen.id AND q.organisation_id = :organisation_id
                      AND q.created_at >= :start AND q.created_at < :end AND ({where})
                    ORDER BY q.created_at DESC, q.id DESC
                    LIMIT :candidates) AS r) AS x
      JOIN messages m ON m.id = x.message_id AND m.organisation_id = :organisation_id
     WHERE (x.newest <= :examples OR x.nearest = 1) AND m.text IS NOT NULL
     ORDER BY x.group_id, x.created_at DESC
"""


async def report(scope: TenantScope, filters: Filters, *, limit: int = DEFAULT_GROUPS) -> Report:
    """The period's gaps: at most ``limit`` groups, each with ``EXAMPLES`` examples,
    newest first."""
    questions = _QUESTIONS.format(where=filters.where("q"))
    parameters = {
        "organisation_id": scope.organisation_id,
        "start": filters.period.start,
        "end": filters.period.end,
        **filters.parameters,
    }
    session = scope.session
    rows = (
        await session.execute(
            text(_GROUPS.format(questions=questions)),
            {**parameters, "limit": limit},
        )
    ).all()
    ids = [row.id for row in rows]
    examples: dict[uuid.UUID, list[Example]] = {id: [] for id in ids}
    representative: dict[uuid.UUID, str] = {}
    if ids:
        found = await session.execute(
            text(_EXAMPLES.format(where=filters.where("q"))),
            {**parameters, "groups": ids, "examples": EXAMPLES, "candidates": CANDIDATES},
        )
        for row in found:
            if row.nearest == 1:
                representative[row.group_id] = row.text
            if row.newest <= EXAMPLES:
                examples[row.group_id].append(
                    Example(row.text, row.created_at, row.conversation_id, row.cause)
                )
    return Report(
        questions=int(rows[0].total) if rows else 0,
        groups=[
            Group(
                id=row.id,
                questions=row.questions,
                conversations=row.conversations,
                fallbacks=row.fallbacks,
                handoffs=row.handoffs,
                first_seen=row.first_seen,
                last_seen=row.last_seen,
                representative=representative.get(row.id, ""),
                examples=examples[row.id],
                answered_at=row.answered_at,
                answer_item_id=row.answer_item_id,
                asked_since_answer=row.asked_since_answer,
            )
            for row in rows
        ],
    )
