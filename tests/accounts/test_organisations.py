from datetime import UTC, datetime, timedelta

import pytest

from cybergine.accounts import service
from cybergine.accounts.models import OrganisationStatus
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from cybergine.errors import Conflict, InvalidInput, NotFound


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
async def test_organisation_names_are_validated(database: Database, name: str) -> None:
    async with database.transaction() as session:
        with pytest.raises(InvalidInput):
            await service.create_organisation(session, name=name)


async def test_hostile_names_are_stored_verbatim(database: Database) -> None:
    name = "<script>alert('x')</script> Robert'); DROP TABLE organisations;--"
    async with database.transaction() as session:
        organisation = await service.create_organisation(session, name=name)
    async with database.transaction() as session:
        assert (await service.get_organisation(session, organisation.id)).name == name


async def test_unknown_organisation_is_not_found(database: Database) -> None:
    async with database.transaction() as session:
        with pytest.raises(NotFound):
            await service.get_organisation(session, uuid7())
        with pytest.raises(NotFound):
            await service.schedule_deletion(session, uuid7(), grace=timedelta(days=1))


async def test_deletion_cannot_be_scheduled_twice(database: Database) -> None:
    async with database.transaction() as session:
        organisation = await service.create_organisation(session, name="Acme")
        await service.schedule_deletion(session, organisation.id, grace=timedelta(days=30))
        assert organisation.status is OrganisationStatus.PENDING_DELETION
        with pytest.raises(Conflict):
            await service.schedule_deletion(session, organisation.id, grace=timedelta(days=30))


async def test_only_a_pending_deletion_can_be_cancelled(database: Database) -> None:
    async with database.transaction() as session:
        organisation = await service.create_organisation(session, name="Acme")
        with pytest.raises(Conflict):
            await service.cancel_deletion(session, organisation.id)


async def test_erasure_is_refused_before_the_grace_period_ends(database: Database) -> None:
    now = datetime.now(UTC)
    async with database.transaction() as session:
        organisation = await service.create_organisation(session, name="Acme")
        await service.schedule_deletion(session, organisation.id, grace=timedelta(days=30), now=now)
        assert not await service.erase_if_due(
            session, organisation.id, now=now + timedelta(days=29)
        )
        assert await service.erase_if_due(session, organisation.id, now=now + timedelta(days=30))
        # A retried job finds nothing left to do.
        assert not await service.erase_if_due(
            session, organisation.id, now=now + timedelta(days=31)
        )
