"""Erasing a staff user (policy §11, §14): when they delete their account (with their
password, and never leaving an organisation without an owner), and 30 days after they
were left without any organisation.

Erasure deletes the user's row, and with it (by cascade) their memberships, browser
sessions, reset links and pending e-mail changes; API keys and invitations they created
stay with their organisation but no longer point at them; invitations and e-mails
addressed to them go, and the throttles' counts keyed by their address; the audit trail
keeps their id and loses their address (``privacy.audit.forget_actor``), and still
verifies.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts import passwords, throttle
from cybergine.accounts.models import EmailChange, Invitation, Membership, Organisation, Role, User
from cybergine.accounts.service import login, own_account, password_reset, signup
from cybergine.accounts.service.login import PER_ACCOUNT
from cybergine.db.engine import Database
from cybergine.errors import Conflict, InvalidInput, TooManyRequests
from cybergine.mail.service import forget_recipient
from cybergine.privacy import audit

log = structlog.get_logger(__name__)

# Policy §11: account data is kept for the life of the account plus 30 days. An account
# with no organisation left has ended; the periodic job notices within its interval.
DEPARTED_GRACE = timedelta(days=30)
ERASE_BATCH = 100

DELETED_BY_OWNER = "deleted by its owner"
NO_ORGANISATION_LEFT = "no organisation for 30 days"


class SoleOwner(Conflict):
    type_slug = "sole-owner"
    title = "Still the only owner"


async def sole_owner_organisations(
    session: AsyncSession, user_id: uuid.UUID, *, lock: bool = False
) -> list[Organisation]:
    """The organisations ``user_id`` owns alone. ``lock`` (to act on the answer) locks
    them in id order, so that two owners deleting their accounts at once cannot both
    leave."""
    query = (
        select(Organisation)
        .join(Membership, Membership.organisation_id == Organisation.id)
        .where(Membership.user_id == user_id, Membership.role == Role.OWNER)
        .order_by(Organisation.id)
    )
    if lock:
        query = query.with_for_update(of=Organisation)
    owned = (await session.scalars(query)).all()
    alone = []
    for organisation in owned:
        owners = await session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.organisation_id == organisation.id, Membership.role == Role.OWNER)
        )
        if owners == 1:
            alone.append(organisation)
    return alone


async def delete_account(
    session: AsyncSession, database: Database, user: User, *, password: str
) -> None:
    """The user's own request: checked against their password (a guess counts like a
    sign-in attempt), refused while an organisation has no other owner."""
    admission = await throttle.admit(database, (PER_ACCOUNT, user.email))
    if admission.refused_by is not None:
        raise TooManyRequests(
            "Too many wrong passwords. Wait 15 minutes, or reset your password.",
            retry_after=int(PER_ACCOUNT.window.total_seconds()),
        )
    if not await passwords.verify_password(user.password_hash, password):
        raise InvalidInput(
            "Your password is not right; your account was not deleted.", field="password"
        )
    await throttle.forgive(session, admission)
    alone = await sole_owner_organisations(session, user.id, lock=True)
    if alone:
        names = ", ".join(organisation.name for organisation in alone)
        raise SoleOwner(
            f"You are the only owner of {names}. Make someone else owner there, or delete "
            "the organisation, before you delete your account."
        )
    await erase_user(session, user.id, reason=DELETED_BY_OWNER)


async def erase_user(session: AsyncSession, user_id: uuid.UUID, *, reason: str) -> bool:
    """Erase the user if they still exist (a retried job finds nothing to do)."""
    user = await session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None:
        return False
    pending = (
        await session.scalars(select(EmailChange.new_email).where(EmailChange.user_id == user_id))
    ).all()
    for address in {user.email, *pending}:
        await forget_recipient(session, address)
    await throttle.forget(
        session,
        (login.PER_ACCOUNT, user.email),
        (password_reset.PER_ADDRESS, user.email),
        (signup.PER_ADDRESS, user.email),
        (own_account.EMAIL_CHANGES, str(user.id)),
    )
    await session.execute(delete(Invitation).where(Invitation.email == user.email))
    await session.delete(user)
    await session.flush()
    await audit.forget_actor(session, audit.Actor.user(user_id))
    await audit.record(
        session,
        action="account.erased",
        actor=audit.Actor.system("accounts"),
        target_type="user",
        target_id=str(user_id),
        details={"reason": reason},
    )
    log.info("user erased", user_id=str(user_id), reason=reason)
    return True


async def erase_departed(session: AsyncSession, *, now: datetime | None = None) -> int:
    """The periodic sweep: note when each user was first seen without an organisation
    (and forget it when they join one again), and erase, at most ``ERASE_BATCH`` at a
    time, those without one for ``DEPARTED_GRACE``. Idempotent; returns how many."""
    now = now or datetime.now(UTC)
    belongs = exists().where(Membership.user_id == User.id)
    await session.execute(
        update(User)
        .where(User.no_organisation_since.is_(None), ~belongs)
        .values(no_organisation_since=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(User)
        .where(User.no_organisation_since.is_not(None), belongs)
        .values(no_organisation_since=None)
        .execution_options(synchronize_session=False)
    )
    due = (
        await session.scalars(
            select(User.id)
            .where(User.no_organisation_since <= now - DEPARTED_GRACE, ~belongs)
            .order_by(User.no_organisation_since)
            .limit(ERASE_BATCH)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for user_id in due:
        await erase_user(session, user_id, reason=NO_ORGANISATION_LEFT)
    return len(due)
