"""Organisation lifecycle: creation, deletion with a grace period, erasure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import Organisation, OrganisationStatus
from cybergine.accounts.principal import Principal
from cybergine.db.tenancy import TenantScope
from cybergine.errors import Conflict, InvalidInput, NotFound
from cybergine.job_names import JobName
from cybergine.privacy import audit
from cybergine.queue import defer

log = structlog.get_logger(__name__)


async def create_organisation(session: AsyncSession, *, name: str) -> Organisation:
    name = name.strip()
    if not name:
        raise InvalidInput("An organisation needs a name.")
    if len(name) > 200:
        raise InvalidInput("An organisation name has at most 200 characters.")
    organisation = Organisation(name=name)
    session.add(organisation)
    await session.flush()
    return organisation


async def get_organisation(session: AsyncSession, organisation_id: uuid.UUID) -> Organisation:
    organisation = await session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound("No such organisation.")
    return organisation


async def find_organisation_by_name(session: AsyncSession, name: str) -> Organisation | None:
    result = await session.execute(
        select(Organisation).where(Organisation.name == name).order_by(Organisation.id).limit(1)
    )
    return result.scalar_one_or_none()


async def schedule_deletion(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    *,
    grace: timedelta,
    actor: audit.Actor | None = None,
    now: datetime | None = None,
) -> Organisation:
    """Policy §11: a deleted organisation may export its data during the grace period;
    then it is erased. The erasure job is deferred in the same transaction, so a
    deletion is never recorded without the job that completes it."""
    organisation = await _lock(session, organisation_id)
    if organisation.status is OrganisationStatus.PENDING_DELETION:
        raise Conflict("This organisation is already scheduled for deletion.")
    erase_after = (now or datetime.now(UTC)) + grace
    organisation.status = OrganisationStatus.PENDING_DELETION
    organisation.erase_after = erase_after
    await session.flush()
    await defer(
        session,
        JobName.ERASE_ORGANISATION,
        schedule_at=erase_after,
        organisation_id=str(organisation_id),
    )
    await audit.record(
        session,
        action="organisation.deletion.scheduled",
        actor=actor or audit.Actor.system(),
        organisation_id=organisation_id,
        target_type="organisation",
        target_id=str(organisation_id),
        details={"erase_after": erase_after.isoformat()},
    )
    log.info("organisation deletion scheduled", organisation_id=str(organisation_id))
    return organisation


async def cancel_deletion(
    session: AsyncSession, organisation_id: uuid.UUID, *, actor: audit.Actor | None = None
) -> Organisation:
    organisation = await _lock(session, organisation_id)
    if organisation.status is not OrganisationStatus.PENDING_DELETION:
        raise Conflict("This organisation is not scheduled for deletion.")
    organisation.status = OrganisationStatus.ACTIVE
    organisation.erase_after = None
    await session.flush()
    await audit.record(
        session,
        action="organisation.deletion.cancelled",
        actor=actor or audit.Actor.system(),
        organisation_id=organisation_id,
        target_type="organisation",
        target_id=str(organisation_id),
    )
    return organisation


async def erase_if_due(
    session: AsyncSession, organisation_id: uuid.UUID, *, now: datetime | None = None
) -> bool:
    """Erase the organisation and, by cascade, every row it owns.

    Re-checks the state under a row lock: a deletion cancelled (or re-scheduled)
    after the job was deferred must not erase anything.
    """
    organisation = await session.get(Organisation, organisation_id, with_for_update=True)
    if organisation is None:
        return False  # already erased: a retried job is a no-op
    now = now or datetime.now(UTC)
    if (
        organisation.status is not OrganisationStatus.PENDING_DELETION
        or organisation.erase_after is None
        or organisation.erase_after > now
    ):
        return False
    await _erase(session, organisation_id, actor=audit.Actor.system())
    return True


async def erase_at_once(
    session: AsyncSession, organisation_id: uuid.UUID, *, actor: audit.Actor
) -> bool:
    """Erase the organisation now, with no grace period: its Shopify shop asked for its
    data to be erased (``shop/redact``, 48 hours after the app was uninstalled). False if
    it is already gone."""
    organisation = await session.get(Organisation, organisation_id, with_for_update=True)
    if organisation is None:
        return False
    await _erase(session, organisation_id, actor=actor)
    return True


async def _erase(session: AsyncSession, organisation_id: uuid.UUID, *, actor: audit.Actor) -> None:
    # One statement cascading to every row the organisation owns: it takes as long as
    # the organisation is big, so the ordinary statement timeout does not apply to it.
    await session.execute(text("SET LOCAL statement_timeout = 0"))
    await session.execute(delete(Organisation).where(Organisation.id == organisation_id))
    # The audit trail outlives the organisation (7-year retention), and says it was erased.
    await audit.record(
        session,
        action="organisation.erased",
        actor=actor,
        organisation_id=organisation_id,
        target_type="organisation",
        target_id=str(organisation_id),
    )
    log.info("organisation erased", organisation_id=str(organisation_id))


async def hide_for_uninstalled_shop(
    session: AsyncSession, organisation_id: uuid.UUID
) -> Organisation:
    """Its Shopify shop uninstalled the app: the organisation is hidden from every
    surface (``accounts.grace``) until the app is installed again. One already scheduled
    for deletion stays so: it is hidden from the channels already and erased anyway."""
    organisation = await _lock(session, organisation_id)
    if organisation.status is OrganisationStatus.ACTIVE:
        organisation.status = OrganisationStatus.SHOP_UNINSTALLED
        await session.flush()
    return organisation


async def show_reinstalled_shop(session: AsyncSession, organisation_id: uuid.UUID) -> Organisation:
    """Its Shopify shop installed the app again before its data was erased: the
    organisation is back as it was."""
    organisation = await _lock(session, organisation_id)
    if organisation.status is OrganisationStatus.SHOP_UNINSTALLED:
        organisation.status = OrganisationStatus.ACTIVE
        await session.flush()
    return organisation


async def _lock(session: AsyncSession, organisation_id: uuid.UUID) -> Organisation:
    organisation = await session.get(Organisation, organisation_id, with_for_update=True)
    if organisation is None:
        raise NotFound("No such organisation.")
    return organisation


async def rename_organisation(scope: TenantScope, caller: Principal, *, name: str) -> Organisation:
    organisation = await _lock(scope.session, scope.organisation_id)
    previous = organisation.name
    new_name = name.strip()
    if not new_name or len(new_name) > 200:
        raise InvalidInput("An organisation name has 1 to 200 characters.", field="name")
    if new_name != previous:
        organisation.name = new_name
        await scope.session.flush()
        await audit.record(
            scope.session,
            action="organisation.settings.changed",
            actor=caller.actor,
            organisation_id=scope.organisation_id,
            target_type="organisation",
            target_id=str(scope.organisation_id),
            details={"field": "name", "from": previous, "to": new_name},
        )
    return organisation
