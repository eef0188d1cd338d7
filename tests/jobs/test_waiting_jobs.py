"""``queue.jobs_are_waiting``: what the retention purge reads to make way for other work."""

from datetime import timedelta

from cybergine import queue
from cybergine.accounts import service
from cybergine.db.engine import Database


async def _waiting(database: Database) -> bool:
    async with database.transaction() as session:
        return await queue.jobs_are_waiting(session)


async def test_only_a_job_that_is_due_and_not_started_counts_as_waiting(
    database: Database,
) -> None:
    assert await _waiting(database) is False
    async with database.transaction() as session:
        later = await service.create_organisation(session, name="Later")
        now = await service.create_organisation(session, name="Now")
    # An erasure thirty days out is scheduled work, not work waiting.
    async with database.transaction() as session:
        await service.schedule_deletion(session, later.id, grace=timedelta(days=30))
    assert await _waiting(database) is False

    async with database.transaction() as session:
        await service.schedule_deletion(session, now.id, grace=timedelta(0))
    assert await _waiting(database) is True
