"""Each conversation's figures as a row (``analytics_conversations``, ``fact_models``),
written by the refresh for the conversations changed since its mark and by the rebuild
for a period, from ``definitions.conversation_metrics``: the only statement that reads
messages. A row holds everything the aggregates count of its conversation: its counts,
outcomes, durations and CSAT outcome, and its model usage and sources cited (jsonb
arrays), so the aggregates are sums of rows (``sums``) and a change moves them by the
difference between a conversation's old row and its new one. The CSV export copies the
rows, and a period's distinct customers are counted from them.

:func:`metrics` gives the rows under the column names of
``definitions.conversation_metrics``, so every figure's predicate (``Figure.predicate``,
``Bucket.predicate``) reads them alike.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.analytics import definitions
from cybergine.analytics.models import DURATIONS

# The columns copied from ``definitions.conversation_metrics`` as they are.
_COPIED = (
    "conversation_id",
    "conversation_version",
    "assistant_id",
    "channel",
    "state",
    "started_at",
    "hour",
    "handoff_at",
    "resolved_at",
    *definitions.TOTALS,
    "answered_by_assistant",
    "resolved_by_assistant",
    "handed_to_person",
    "resolved",
    "with_fallback",
    "with_grounded_answer",
    "deflected",
    "csat_surveys_sent",
    "csat_responses",
    "csat_positive",
    *(f"{name}{kind}_seconds" for name in DURATIONS for kind in ("", "_business")),
)


def _previous(*, same_assistant: bool) -> str:
    """When the customer began their previous conversation (with the same assistant):
    ties in time are ordered by id, so two conversations begun at once count one
    customer. A customer belongs to one channel, so the channel filter needs no kind
    of its own."""
    assistant = " AND p.assistant_id IS NOT DISTINCT FROM m.assistant_id" if same_assistant else ""
    return (
        "(SELECT max(p.created_at) FROM conversations p"  # noqa: S608
        " WHERE p.customer_id = m.customer_id"
        " AND (p.created_at < m.started_at"
        f" OR p.created_at = m.started_at AND p.id < m.conversation_id){assistant})"
    )


def _insert(where: str) -> str:
    return f"""
    INSERT INTO analytics_conversations
           (id, organisation_id, created_at, updated_at, {", ".join(_COPIED)},
            handoff_reason, previous_at, previous_with_assistant_at, model_usage,
            cited_sources)
    SELECT gen_random_uuid(), :organisation_id, m.started_at, now(),
           {", ".join(f"m.{name}" for name in _COPIED)},
           CASE WHEN m.handoff_at IS NOT NULL
                THEN {definitions.handoff_reason_code("m.handoff_reason")} END,
           {_previous(same_assistant=False)}, {_previous(same_assistant=True)},
           {definitions.model_usage("m.conversation_id")},
           {definitions.cited_sources("m.conversation_id")}
      FROM ({definitions.conversation_metrics(where)}) AS m
    """  # noqa: S608


_INSERT_CONVERSATIONS = _insert("c.id = ANY(CAST(:ids AS uuid[]))")
_INSERT_PERIOD = _insert("c.created_at >= :start AND c.created_at < :end")


async def write_conversations(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    ids: list[uuid.UUID],
    parameters: dict[str, object],
) -> None:
    """The rows of these conversations, recomputed (``parameters``: the measure's)."""
    await session.execute(
        text(
            "DELETE FROM analytics_conversations WHERE conversation_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": ids},
    )
    await session.execute(
        text(_INSERT_CONVERSATIONS),
        {"organisation_id": organisation_id, "ids": ids, **parameters},
    )


async def write_period(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    start: datetime,
    end: datetime,
    parameters: dict[str, object],
) -> None:
    """The rows of the conversations begun in [start, end), recomputed."""
    period = {"organisation_id": organisation_id, "start": start, "end": end}
    await session.execute(
        text(
            "DELETE FROM analytics_conversations WHERE organisation_id = :organisation_id"
            " AND started_at >= :start AND started_at < :end"
        ),
        period,
    )
    await session.execute(text(_INSERT_PERIOD), {**period, **parameters})


def metrics(where: str) -> str:
    """The rows of the organisation's conversations matching ``where`` (SQL over the row
    ``f``), each with its CSAT rating beside it (``csat_rating``, for the export)."""
    return f"""
    SELECT f.*, s.rating AS csat_rating
      FROM analytics_conversations f
      LEFT JOIN csat_surveys s ON s.conversation_id = f.conversation_id
     WHERE f.organisation_id = :organisation_id AND ({where})
    """  # noqa: S608
