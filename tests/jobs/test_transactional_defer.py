"""A job and the rows it concerns commit together, or not at all; a worker runs it."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from cybergine.accounts import service
from cybergine.accounts.models import Organisation, OrganisationStatus
from cybergine.db.engine import Database
from cybergine.jobs import Worker


async def _jobs(database: Database, task: str) -> list[dict[str, object]]:
    async with database.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT id, status, args, scheduled_at FROM procrastinate_jobs WHERE task_name = :t"
            ),
            {"t": task},
        )
        return [dict(row._mapping) for row in rows]


async def test_rolled_back_transaction_leaves_neither_row_change_nor_job(
    database: Database,
) -> None:
    async with database.transaction() as session:
        organisation = await service.create_organisation(session, name="Acme")

    class Abort(Exception):
        pass

    async def schedule_then_fail() -> None:
        async with database.transaction() as session:
            await service.schedule_deletion(session, organisation.id, grace=timedelta(days=30))
            # Not visible to other transactions before the commit either.
            assert await _jobs(database, "accounts:erase_organisation") == []
            raise Abort

    with pytest.raises(Abort):
        await schedule_then_fail()

    async with database.transaction() as session:
        reloaded = await session.get(Organisation, organisation.id)
        assert reloaded is not None
        assert reloaded.status is OrganisationStatus.ACTIVE
    assert await _jobs(database, "accounts:erase_organisation") == []


async def test_committed_transaction_has_both_and_a_worker_runs_the_job(
    database: Database,
) -> None:
    async with database.transaction() as session:
        organisation = await service.create_organisation(session, name="Acme")
    async with database.transaction() as session:
        await service.schedule_deletion(session, organisation.id, grace=timedelta(0))

    (job,) = await _jobs(database, "accounts:erase_organisation")
    assert job["status"] == "todo"
    assert job["args"] == {"organisation_id": str(organisation.id)}

    await Worker(database, concurrency=1).run(wait=False, install_signal_handlers=False)

    (job,) = await _jobs(database, "accounts:erase_organisation")
    assert job["status"] == "succeeded"
    async with database.transaction() as session:
        assert await session.get(Organisation, organisation.id) is None


async def test_erasure_waits_for_the_grace_period(database: Database) -> None:
    async with database.transaction() as session:
        organisation = await service.create_organisation(session, name="Acme")
        await service.schedule_deletion(session, organisation.id, grace=timedelta(days=30))

    (job,) = await _jobs(database, "accounts:erase_organisation")
    scheduled_at = job["scheduled_at"]
    assert isinstance(scheduled_at, datetime)
    assert scheduled_at > datetime.now(UTC) + timedelta(days=29)

    # The worker does not pick up a job scheduled in the future.
    await Worker(database, concurrency=1).run(wait=False, install_signal_handlers=False)
    async with database.transaction() as session:
        assert await session.get(Organisation, organisation.id) is not None


async def test_cancelled_deletion_is_not_erased_even_if_the_job_runs(database: Database) -> None:
    async with database.transaction() as session:
        organisation = await service.create_organisation(session, name="Acme")
        await service.schedule_deletion(session, organisation.id, grace=timedelta(0))
    async with database.transaction() as session:
        await service.cancel_deletion(session, organisation.id)

    await Worker(database, concurrency=1).run(wait=False, install_signal_handlers=False)

    async with database.transaction() as session:
        kept = await session.get(Organisation, organisation.id)
        assert kept is not None
        assert kept.status is OrganisationStatus.ACTIVE
        count = await session.scalar(select(func.count()).select_from(Organisation))
        assert count == 1
