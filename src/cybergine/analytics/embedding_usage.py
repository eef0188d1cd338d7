"""What the embedding calls cost: their tokens counted per hour, organisation,
assistant, provider, model and purpose (``embedding_usage_models``), and shown beside
the answers' in the summary's model usage and model cost (priced by the same
``CYBERGINE_MODEL_PRICES``, keyed ``provider/model``).

A caller embeds through :func:`embed` (with a session) or wraps its calls in
``metering()`` and hands what they used to :func:`record` in a short transaction of its
own (when no transaction is open while the model works). Only calls to an
OpenAI-compatible endpoint are counted (its ``usage.prompt_tokens``, or an estimate when
it reports none): the local model runs on this machine's CPU, which no price covers, so
it is not counted at all. A call counts in the hour (and the UTC day) it was recorded. Where no
transaction is open while the model works (indexing, catalogue sync), the usage is
written in a transaction of its own, so it counts even when the caller's later write
fails (the endpoint billed it either way); elsewhere it is one statement in the caller's
session (the answer's short transactions, the knowledge gaps job).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.analytics import days
from cybergine.analytics.embedding_usage_models import Purpose
from cybergine.analytics.periods import Filters
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from cybergine.knowledge.embeddings.base import (
    EmbeddingKind,
    EmbeddingProvider,
    EmbeddingUsage,
    metering,
)

__all__ = ["Purpose", "embed", "record", "record_apart", "usage_rows"]

# One statement writes the hour's row and the UTC day's (``days``): the same counts.
_UPSERT = text(
    """
    WITH hour AS (
        INSERT INTO analytics_hourly_embeddings AS t
               (id, organisation_id, hour, assistant_id, provider, model, purpose,
                requests, inputs, prompt_tokens, created_at, updated_at)
        VALUES (:id, :organisation_id, date_trunc('hour', now()), :assistant_id, :provider,
                :model, :purpose, :requests, :inputs, :prompt_tokens,
                date_trunc('hour', now()), now())
        ON CONFLICT ON CONSTRAINT uq_analytics_hourly_embeddings_key DO UPDATE
           SET requests = t.requests + excluded.requests,
               inputs = t.inputs + excluded.inputs,
               prompt_tokens = t.prompt_tokens + excluded.prompt_tokens,
               updated_at = now()
    )
    INSERT INTO analytics_daily_embeddings AS t
           (id, organisation_id, day, assistant_id, provider, model, purpose,
            requests, inputs, prompt_tokens, created_at, updated_at)
    SELECT :day_id, :organisation_id, day, :assistant_id, :provider, :model, :purpose,
           :requests, :inputs, :prompt_tokens, day, now()
      FROM (SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day) d
    ON CONFLICT ON CONSTRAINT uq_analytics_daily_embeddings_key DO UPDATE
       SET requests = t.requests + excluded.requests,
           inputs = t.inputs + excluded.inputs,
           prompt_tokens = t.prompt_tokens + excluded.prompt_tokens,
           updated_at = now()
    """
)

# The period's rows: daily ones for its whole UTC days, hourly ones for its edges.
_ROWS = text(
    f"""
    SELECT h.provider, h.model, h.assistant_id, h.purpose, sum(h.requests) AS requests,
           sum(h.prompt_tokens) AS prompt_tokens
      FROM ({
        days.rows(
            "analytics_hourly_embeddings",
            "analytics_daily_embeddings",
            "provider, model, assistant_id, purpose, requests, prompt_tokens",
            "(CAST(:assistant_id AS uuid) IS NULL OR h.assistant_id = :assistant_id)",
        )
    }) h
     GROUP BY 1, 2, 3, 4
     ORDER BY 6 DESC, 1, 2, 4
    """  # noqa: S608
)


async def record(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    usage: EmbeddingUsage,
    *,
    purpose: Purpose,
    assistant_id: uuid.UUID | None = None,
) -> None:
    """Count what ``usage`` measured under this hour; nothing when it measured nothing
    (the local model, lexical-only mode, no call)."""
    for (provider, model), (requests, inputs, tokens) in sorted(usage.calls.items()):
        await session.execute(
            _UPSERT,
            {
                "id": uuid7(),
                "day_id": uuid7(),
                "organisation_id": organisation_id,
                "assistant_id": assistant_id,
                "provider": provider[:100],
                "model": model[:100],
                "purpose": purpose.value,
                "requests": requests,
                "inputs": inputs,
                "prompt_tokens": tokens,
            },
        )


async def record_apart(
    database: Database,
    organisation_id: uuid.UUID,
    usage: EmbeddingUsage,
    *,
    purpose: Purpose,
    assistant_id: uuid.UUID | None = None,
) -> None:
    """:func:`record` in a short transaction of its own (no connection is taken when
    nothing was measured)."""
    if not usage.calls:
        return
    async with database.transaction() as session:
        await record(session, organisation_id, usage, purpose=purpose, assistant_id=assistant_id)


async def embed(
    session: AsyncSession,
    provider: EmbeddingProvider,
    texts: Sequence[str],
    *,
    kind: EmbeddingKind,
    organisation_id: uuid.UUID,
    purpose: Purpose,
    assistant_id: uuid.UUID | None = None,
) -> list[list[float]]:
    """``provider.embed`` with its usage counted in ``session``."""
    with metering() as usage:
        vectors = await provider.embed(texts, kind=kind)
    await record(session, organisation_id, usage, purpose=purpose, assistant_id=assistant_id)
    return vectors


async def usage_rows(
    session: AsyncSession, organisation_id: uuid.UUID, filters: Filters
) -> list[dict[str, Any]]:
    """The period's embedding usage per provider, model, assistant and purpose, shaped
    as the summary's model usage rows (no answers, no completion tokens). An assistant
    filter keeps its own usage (its answers' searches); a channel filter keeps none, as
    no embedding call belongs to a channel."""
    if filters.channel is not None:
        return []
    rows = await session.execute(
        _ROWS,
        {
            "organisation_id": organisation_id,
            "assistant_id": filters.assistant_id,
            **days.split(filters.period.start, filters.period.end).parameters,
        },
    )
    return [
        {
            "kind": "embeddings",
            "provider": row.provider,
            "model": row.model,
            "assistant_id": row.assistant_id,
            "purpose": row.purpose,
            "requests": int(row.requests),
            "answers": 0,
            "prompt_tokens": int(row.prompt_tokens),
            "completion_tokens": 0,
        }
        for row in rows
    ]
