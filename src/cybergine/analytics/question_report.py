"""The top questions and the knowledge gaps of a period (``analytics.gaps`` says what
they are): the groups of questions asked in it, narrowed by assistant and channel, most
asked first. The top questions count every question of a group; the knowledge gaps its
fallbacks and hand-offs only, and list the groups someone answered after the open ones.

A group's figures come from its monthly and daily counts (``knowledge_gap_months``,
``knowledge_gap_days``, which the database keeps as questions are written and deleted)
for the period's whole UTC months and its other whole UTC days, and from the questions
themselves for its ragged edges (``days.split``): a year is a few rows per group and
month, whatever the number of questions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from cybergine.analytics import days
from cybergine.analytics.gaps import (
    CAUSES,
    DEFAULT_GROUPS,
    EXAMPLES,
    FALLBACK,
    GAP_CAUSES,
    GROUNDED,
    HANDOFF,
)
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
    grounded: int
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
    questions: int  # every question of the period the report counts, in all groups
    groups: list[Group]


@dataclass(frozen=True)
class Kind:
    """What a report counts: the questions of ``causes``, a group's conversations by
    the question of those causes its conversation asked before in the group (the
    ``previous`` columns: ``previous_at`` / ``previous_day`` or the gaps' own)."""

    causes: tuple[str, ...]
    previous: str
    answered_last: bool  # the groups a Q&A pair answers come after the open ones


TOP_QUESTIONS = Kind(CAUSES, "previous", answered_last=False)
KNOWLEDGE_GAPS = Kind(GAP_CAUSES, "previous_gap", answered_last=True)


# Each group's figures over the period's pieces (``days.split``, ``_months``): its whole
# UTC months from the monthly rows, its other whole UTC days from the daily rows, its
# ragged edges from the questions. A conversation counts once per group: by its first
# question of the group in the period, the one whose conversation had not asked in the
# group since before the period (``previous_at``, for the gaps ``previous_gap_at``:
# ``Kind.previous``). A daily or monthly row knows that question's day only, so the
# whole days' questions whose previous one was asked on the day the period starts in,
# but before its start, are read from the questions too.
_PIECES = """
    SELECT m.group_id, m.cause, m.questions, m.first_seen, m.last_seen,
           CASE WHEN m.{previous}_day IS NULL OR m.{previous}_day < :start_day
                THEN m.questions ELSE 0 END AS conversations
      FROM knowledge_gap_months m
     WHERE m.organisation_id = :organisation_id
       AND m.month >= :first_month AND m.month < :last_month AND ({months})
       AND m.cause = ANY(CAST(:causes AS text[]))
    UNION ALL
    SELECT d.group_id, d.cause, d.questions, d.first_seen, d.last_seen,
           CASE WHEN d.{previous}_day IS NULL OR d.{previous}_day < :start_day
                THEN d.questions ELSE 0 END AS conversations
      FROM knowledge_gap_days d
     WHERE d.organisation_id = :organisation_id
       AND (d.day >= :first_day AND d.day < :first_month
            OR d.day >= :last_month AND d.day < :last_day) AND ({days})
       AND d.cause = ANY(CAST(:causes AS text[]))
    UNION ALL
    SELECT q.group_id, q.cause, 0, NULL, NULL, 1
      FROM knowledge_gap_questions q
     WHERE q.organisation_id = :organisation_id
       AND q.{previous}_at >= :start_day AND q.{previous}_at < :start
       AND q.created_at >= :first_day AND q.created_at < :last_day
       AND q.group_id IS NOT NULL AND ({questions})
       AND q.cause = ANY(CAST(:causes AS text[]))
    UNION ALL
    SELECT q.group_id, q.cause, 1, q.created_at, q.created_at,
           CASE WHEN q.{previous}_at IS NULL OR q.{previous}_at < :start THEN 1 ELSE 0 END
      FROM knowledge_gap_questions q
     WHERE q.organisation_id = :organisation_id
       AND (q.created_at >= :start AND q.created_at < :first_day
            OR q.created_at >= :last_day AND q.created_at < :end)
       AND q.group_id IS NOT NULL AND ({questions})
       AND q.cause = ANY(CAST(:causes AS text[]))
"""


def _month_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _months(pieces: days.Split) -> dict[str, datetime]:
    """The whole UTC months among the split's whole days, [first_month, last_month); with
    none, both are ``last_day`` (the daily rows then cover every whole day)."""
    first = _month_of(pieces.first_day)
    if first != pieces.first_day:
        first = _month_of(first + timedelta(days=32))
    last = _month_of(pieces.last_day)
    if first >= last:
        first = last = pieces.last_day
    return {"first_month": first, "last_month": last}


_GROUPS = """
    SELECT g.id, p.questions, p.conversations, p.grounded, p.fallbacks, p.handoffs,
           p.first_seen,
           p.last_seen, g.answered_at, g.answer_item_id,
           -- Every group's questions, listed or not (the window runs before the LIMIT):
           -- the period's total, without reading its questions a second time.
           sum(p.questions) OVER () AS total
      FROM (SELECT p.group_id, sum(p.questions) AS questions,
                   sum(p.conversations) AS conversations,
                   coalesce(sum(p.questions) FILTER (WHERE p.cause = :grounded), 0) AS grounded,
                   coalesce(sum(p.questions) FILTER (WHERE p.cause = :fallback), 0) AS fallbacks,
                   coalesce(sum(p.questions) FILTER (WHERE p.cause = :handoff), 0) AS handoffs,
                   min(p.first_seen) AS first_seen, max(p.last_seen) AS last_seen
              FROM ({pieces}) AS p
             GROUP BY p.group_id) AS p
      JOIN knowledge_gap_groups g ON g.id = p.group_id
     ORDER BY {answered_last} p.questions DESC, p.last_seen DESC, g.id
     LIMIT :limit
"""

# The questions asked since an answered group's answer, per listed answered group (an
# answer is rarely old and its group rarely asked again: read by the group's index).
_SINCE_ANSWER = """
    SELECT g.id, count(q.id) AS asked
      FROM knowledge_gap_groups g
      JOIN knowledge_gap_questions q ON q.group_id = g.id AND q.created_at > g.answered_at
     WHERE g.id = ANY(CAST(:groups AS uuid[])) AND q.organisation_id = :organisation_id
       AND q.created_at >= :start AND q.created_at < :end AND ({where})
       AND q.cause = ANY(CAST(:causes AS text[]))
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
                      AND q.cause = ANY(CAST(:causes AS text[]))
                    ORDER BY q.created_at DESC, q.id DESC
                    LIMIT :candidates) AS r) AS x
      JOIN messages m ON m.id = x.message_id AND m.organisation_id = :organisation_id
     WHERE (x.newest <= :examples OR x.nearest = 1) AND m.text IS NOT NULL
     ORDER BY x.group_id, x.created_at DESC
"""


async def top_questions(
    scope: TenantScope, filters: Filters, *, limit: int = DEFAULT_GROUPS
) -> Report:
    """The period's most asked questions: at most ``limit`` groups by all their
    questions, each with ``EXAMPLES`` examples, newest first."""
    return await report(scope, filters, TOP_QUESTIONS, limit=limit)


async def knowledge_gaps(
    scope: TenantScope, filters: Filters, *, limit: int = DEFAULT_GROUPS
) -> Report:
    """The period's knowledge gaps: at most ``limit`` groups by their fallbacks and
    hand-offs, the answered ones last, each with ``EXAMPLES`` examples, newest first."""
    return await report(scope, filters, KNOWLEDGE_GAPS, limit=limit)


async def report(
    scope: TenantScope, filters: Filters, kind: Kind, *, limit: int = DEFAULT_GROUPS
) -> Report:
    """The period's groups of the questions ``kind`` counts."""
    pieces = days.split(filters.period.start, filters.period.end)
    parameters = {
        "organisation_id": scope.organisation_id,
        "start": filters.period.start,
        "end": filters.period.end,
        "causes": list(kind.causes),
        **filters.parameters,
    }
    session = scope.session
    statement = _GROUPS.format(
        pieces=_PIECES.format(
            months=filters.where("m"),
            days=filters.where("d"),
            questions=filters.where("q"),
            previous=kind.previous,
        ),
        answered_last="g.answered_at IS NOT NULL," if kind.answered_last else "",
    )
    rows = (
        await session.execute(
            text(statement),
            {
                **parameters,
                **pieces.parameters,
                **_months(pieces),
                "start_day": days.day_of(filters.period.start),
                "grounded": GROUNDED,
                "fallback": FALLBACK,
                "handoff": HANDOFF,
                "limit": limit,
            },
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
    answered = [row.id for row in rows if row.answered_at is not None]
    since_answer: dict[uuid.UUID, int] = {}
    if answered:
        found = await session.execute(
            text(_SINCE_ANSWER.format(where=filters.where("q"))),
            {**parameters, "groups": answered},
        )
        since_answer = {row.id: row.asked for row in found}
    return Report(
        questions=int(rows[0].total) if rows else 0,
        groups=[
            Group(
                id=row.id,
                questions=int(row.questions),
                conversations=int(row.conversations),
                grounded=int(row.grounded),
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
