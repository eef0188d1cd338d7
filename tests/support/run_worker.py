"""A worker process that also knows the test tasks: ``python -m tests.support.run_worker URL``."""

from __future__ import annotations

import asyncio
import sys

import tests.support.tasks  # noqa: F401  (registers the test tasks)
from cybergine.db.engine import Database
from cybergine.jobs import Worker
from cybergine.logging import configure_logging


async def main(url: str) -> None:
    configure_logging("INFO", "console")
    database = Database(url, pool_size=2)
    try:
        await Worker(
            database, concurrency=2, heartbeat_seconds=0.5, stalled_after_seconds=2.0
        ).run()
    finally:
        await database.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
