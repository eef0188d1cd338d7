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


# The period's questions per group: counted per group and conversation first (a
# conversation counts once per group), all from the index by organisation and time, which
# carries every column read here; the total of every group rides along (a window over
# the groups, before the limit).
_GROUPS = """
    WITH asked AS (
        SELECT q.group_id, count(*) AS questions,
               count(*) FILTER (WHERE q.cause = 'fallback') AS fallbacks,
               count(*) FILTER (WHERE q.cause = 'handoff') AS handoffs,
               min(q.created_at) AS first_seen, max(q.created_at) AS last_seen
          FROM knowledge_gap_questions q
         WHERE q.organisation_id = :organisation_id
           AND q.created_at >= :start AND q.created_at < :end
           AND q.group_id IS NOT NULL AND ({where})
         GROUP BY q.group_id, q.conversation_id
    )
    SELECT g.id, sum(a.questions) AS questions, count(*) AS conversations,
           sum(a.fallbacks) AS fallbacks, sum(a.handoffs) AS handoffs,
           min(a.first_seen) AS first_seen, max(a.last_seen) AS last_seen,
           g.answered_at, g.answer_item_id, sum(sum(a.questions)) OVER () AS total
      FROM asked a
      JOIN knowledge_gap_groups g ON g.id = a.group_id
     GROUP BY g.id
     ORDER BY g.answered_at IS NOT NULL, sum(a.questions) DESC, max(a.last_seen) DESC, g.id
     LIMIT :limit
"""

# The questions asked since its answer, per listed group someone answered (read by the
# group's index, from the later of the answer and the period's start).
_SINCE_ANSWER = """
    SELECT g.id, count(q.id) AS asked
      FROM knowledge_gap_groups g
      JOIN knowledge_gap_questions q
        ON q.group_id = g.id AND q.created_at > g.answered_at
       AND q.created_at >= :start AND q.created_at < :end AND ({where})
     WHERE g.id = ANY(CAST(:groups AS uuid[])) AND g.organisation_id = :organisation_id
       AND q.organisation_id = :organisation_id
     GROUP BY g.id
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
    where = filters.where("q")
    parameters = {
        "organisation_id": scope.organisation_id,
        "start": filters.period.start,
        "end": filters.period.end,
        **filters.parameters,
    }
    session = scope.session
    rows = (
        await session.execute(text(_GROUPS.format(where=where)), {**parameters, "limit": limit})
    ).all()
    answered = [row.id for row in rows if row.answered_at is not None]
    since_answer: dict[uuid.UUID, int] = {}
    if answered:
        found_since = await session.execute(
            text(_SINCE_ANSWER.format(where=where)), {**parameters, "groups": answered}
        )
        since_answer = {row.id: int(row.asked) for row in found_since}
    ids = [row.id for row in rows]
    examples: dict[uuid.UUID, list[Example]] = {id: [] for id in ids}
    representative: dict[uuid.UUID, str] = {}
    if ids:
        found = await session.execute(
            text(_EXAMPLES.format(where=where)),
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
                questions=int(row.questions),
                conversations=int(row.conversations),
                fallbacks=int(row.fallbacks),
                handoffs=int(row.handoffs),
                first_seen=row.first_seen,
                last_seen=row.last_seen,
                representative=representative.get(row.id, ""),
                examples=examples[row.id],
                answered_at=row.answered_at,
                answer_item_id=row.answer_item_id,
                asked_since_answer=since_answer.get(row.id, 0),
            )
            for row in rows
        ],
    )
