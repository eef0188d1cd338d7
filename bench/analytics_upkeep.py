"""The analytics upkeep while bench/whatsapp.py measures ingest (``--upkeep-rounds``):
the index the refresh finds changed conversations by, in one of its forms, and a process
refreshing every organisation with changes every ``--every`` seconds (more often than
the job queue's sweep, once a minute: an upper bound of what the refresh costs).

VARIANTS says what each form is; ``apply`` puts one in place on the bench's database.
Run as a script it is the refreshing process: ``analytics_upkeep.py <database url>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

# Each variant: the statements that put its index in place (after the others' are gone),
# and whether the refresh runs.
_DROP = (
    "DROP INDEX IF EXISTS ix_conversations_updated_at",
    "DROP INDEX IF EXISTS ix_conversations_organisation_id_updated_at",
)
VARIANTS: dict[str, tuple[tuple[str, ...], bool]] = {
    # No analytics upkeep at all: what the hot path costs without rollups.
    "none": ((), False),
    # Migration 0028's B-tree (an entry per insert and per update), refreshed by the
    # code given as --upkeep-old-src (whole hours recomputed from messages).
    "old": (
        (
            "CREATE INDEX ix_conversations_organisation_id_updated_at"
            " ON conversations (organisation_id, updated_at)",
        ),
        True,
    ),
    # Migration 0032's BRIN index (a summary per 8 pages), refreshed by this tree's code
    # (the changed conversations' rows, then their hours summed from the rows).
    "new": (
        (
            "CREATE INDEX ix_conversations_updated_at ON conversations USING brin (updated_at)"
            " WITH (pages_per_range = 8, autosummarize = on)",
        ),
        True,
    ),
}


def apply(sql: Callable[[str], Any], variant: str) -> bool:
    """Put ``variant``'s index in place; answers whether its refresh should run."""
    statements, refreshes = VARIANTS[variant]
    for statement in (*_DROP, *statements):
        sql(statement)
    sql("VACUUM ANALYZE conversations")
    return refreshes


async def _refresh_forever(url: str, every: float) -> None:
    from cybergine.analytics import rollups
    from cybergine.db.engine import Database

    database = Database(url, pool_size=1, statement_timeout_ms=0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        while not stop.is_set():
            measure = rollups.measure_now(24.0)
            async with database.transaction() as session:
                organisations = await rollups.stale_organisations(session, measure)
            for organisation_id in organisations:
                async with database.transaction() as session:
                    await rollups.refresh(session, organisation_id, measure)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
    finally:
        await database.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--every", type=float, default=1.0)
    arguments = parser.parse_args()
    asyncio.run(_refresh_forever(arguments.url, arguments.every))
