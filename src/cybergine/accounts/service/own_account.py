"""A staff user's rights over their own account (policy §14): a copy of everything held
about them, and correcting their name and e-mail address.

A new e-mail address takes effect only once its owner follows a single-use link sent to
it; the old address is told at once, so a stolen session cannot quietly move the account
to someone else's mailbox. Setting a new password voids a pending change
(``users.set_password``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts import throttle
from cybergine.accounts.models import (
    ApiKey,
    EmailChange,
    Invitation,
    User,
    UserSession,
)
from cybergine.accounts.service.users import (
    clean_name,
    find_user_by_email,
    memberships_of,
    normalise_email,
)
from cybergine.accounts.tokens import new_token, token_hash
from cybergine.db.engine import Database
from cybergine.errors import Conflict, CybergineError, InvalidInput, TooManyRequests
from cybergine.mail.service import queue_email
from cybergine.privacy import audit

EMAIL_CHANGE_LIFETIME = timedelta(hours=24)
# Each request sends two e-mails, one to an address the requester chose.
EMAIL_CHANGES = throttle.Limit("email-change", 5, timedelta(hours=1))
ADDRESS_TAKEN = "Another account uses this e-mail address."


class EmailLinkUnusable(CybergineError):
    status = 410
    type_slug = "email-link-unusable"
    title = "Confirmation link no longer valid"


def _actor(user: User) -> audit.Actor:
    return audit.Actor.user(user.id, email=user.email)


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def export_account(session: AsyncSession, user: User) -> dict[str, Any]:
    """Everything held about ``user`` as the account's owner (policy §14, access and
    portability): profile, memberships, browser sessions, the API keys and invitations
    they created, a pending e-mail change, and what the audit trail records them doing.
    Credentials appear as metadata only (no hash of a password, key or token). The
    export is audited."""
    memberships = await memberships_of(session, user.id)
    browser_sessions = await session.scalars(
        select(UserSession).where(UserSession.user_id == user.id).order_by(UserSession.created_at)
    )
    keys = await session.scalars(
        select(ApiKey).where(ApiKey.created_by_user_id == user.id).order_by(ApiKey.created_at)
    )
    invitations = await session.scalars(
        select(Invitation)
        .where(Invitation.invited_by_user_id == user.id)
        .order_by(Invitation.created_at)
    )
    pending = await _pending_change(session, user)
    actions = await audit.events_by_actor(session, _actor(user))
    await audit.record(
        session,
        action="account.exported",
        actor=_actor(user),
        target_type="user",
        target_id=str(user.id),
    )
    return {
        "profile": {
            "id": str(user.id),
            "name": user.name,
            "email": user.email,
            "created_at": _when(user.created_at),
            "password_changed_at": _when(user.password_changed_at),
            "last_login_at": _when(user.last_login_at),
            "no_organisation_since": _when(user.no_organisation_since),
        },
        "pending_email_change": None
        if pending is None
        else {"new_email": pending.new_email, "expires_at": _when(pending.expires_at)},
        "memberships": [
            {
                "organisation_id": str(organisation.id),
                "organisation_name": organisation.name,
                "role": membership.role.value,
                "joined_at": _when(membership.created_at),
            }
            for membership, organisation in memberships
        ],
        "sessions": [
            {
                "id": str(s.id),
                "started_at": _when(s.created_at),
                "last_seen_at": _when(s.last_seen_at),
                "expires_at": _when(s.expires_at),
                "active_organisation_id": None
                if s.active_organisation_id is None
                else str(s.active_organisation_id),
            }
            for s in browser_sessions
        ],
        "api_keys_created": [
            {
                "id": str(k.id),
                "organisation_id": str(k.organisation_id),
                "name": k.name,
                "prefix": k.prefix,
                "role": k.role.value,
                "created_at": _when(k.created_at),
                "last_used_at": _when(k.last_used_at),
                "revoked_at": _when(k.revoked_at),
            }
            for k in keys
        ],
        # The invitee's address is theirs, not the inviter's: left out.
        "invitations_sent": [
            {
                "id": str(i.id),
                "organisation_id": str(i.organisation_id),
                "role": i.role.value,
                "created_at": _when(i.created_at),
                "accepted_at": _when(i.accepted_at),
                "revoked_at": _when(i.revoked_at),
            }
            for i in invitations
        ],
        "audit_trail": [
            {
                "seq": e.seq,
                "at": _when(e.at),
                "organisation_id": None if e.organisation_id is None else str(e.organisation_id),
                "action": e.action,
                "target_type": e.target_type,
                "target_id": e.target_id,
                "details": e.details,
            }
            for e in actions
        ],
    }


async def pending_email(session: AsyncSession, user: User) -> str | None:
    """The address waiting for confirmation, if any."""
    pending = await _pending_change(session, user)
    return None if pending is None else pending.new_email


async def _pending_change(session: AsyncSession, user: User) -> EmailChange | None:
    return await session.scalar(
        select(EmailChange)
        .where(
            EmailChange.user_id == user.id,
            EmailChange.used_at.is_(None),
            EmailChange.expires_at > datetime.now(UTC),
        )
        .order_by(EmailChange.created_at.desc())
        .limit(1)
    )


async def rename(session: AsyncSession, user: User, name: str) -> None:
    name = clean_name(name)
    if name == user.name:
        return
    user.name = name
    await session.flush()
    # Which field, not its values: the trail is kept for years, a name is the person's.
    await audit.record(
        session,
        action="account.profile.changed",
        actor=_actor(user),
        target_type="user",
        target_id=str(user.id),
        details={"field": "name"},
    )


async def request_email_change(
    session: AsyncSession, database: Database, user: User, *, email: str, public_url: str
) -> None:
    """Send a confirmation link to the new address and tell the old one. A newer
    request replaces a pending one. ``database`` counts the request on a connection of
    its own (``accounts.throttle``): each one e-mails an address of the caller's choice."""
    new_email = normalise_email(email)
    if new_email == user.email:
        raise InvalidInput("This is already your e-mail address.", field="email")
    if await find_user_by_email(session, new_email) is not None:
        raise Conflict(ADDRESS_TAKEN, field="email")
    admission = await throttle.admit(database, (EMAIL_CHANGES, str(user.id)))
    if admission.refused_by is not None:
        raise TooManyRequests(
            "Too many e-mail address changes asked for. Wait an hour, or use a link already sent.",
            retry_after=int(EMAIL_CHANGES.window.total_seconds()),
        )
    now = datetime.now(UTC)
    await _void_pending(session, user, now)
    token = new_token()
    session.add(
        EmailChange(
            user_id=user.id,
            new_email=new_email,
            token_hash=token_hash(token),
            expires_at=now + EMAIL_CHANGE_LIFETIME,
        )
    )
    hours = int(EMAIL_CHANGE_LIFETIME.total_seconds() // 3600)
    await queue_email(
        session,
        to=new_email,
        subject="Confirm your new e-mail address for Cybergine",
        body=(
            f"Hello {user.name},\n\n"
            "To sign in to Cybergine with this address from now on, confirm it here: "
            f"{public_url}/account/email/{token}\n\n"
            f"The link works once and expires in {hours} hours. If you did not ask for "
            "this, ignore this e-mail: nothing changes."
        ),
    )
    await queue_email(
        session,
        to=user.email,
        subject="Your Cybergine e-mail address is about to change",
        body=(
            f"Hello {user.name},\n\n"
            f"Someone signed in as you asked to change your account's address to "
            f"{new_email}. It changes once that address confirms it.\n\n"
            "If it was not you, change your password now: that cancels the change and "
            "signs out every other browser."
        ),
    )
    await audit.record(
        session,
        action="account.email_change.requested",
        actor=_actor(user),
        target_type="user",
        target_id=str(user.id),
    )


async def confirm_email_change(session: AsyncSession, user: User, *, token: str) -> None:
    """Follow the link: ``user`` is the signed-in person, who must be the one who asked."""
    change = await session.scalar(
        select(EmailChange).where(EmailChange.token_hash == token_hash(token)).with_for_update()
    )
    # Someone else's link is as unusable as no link: it says nothing of their account.
    if change is None or change.user_id != user.id:
        raise EmailLinkUnusable(
            "This confirmation link is not valid for your account. Sign in with the account "
            "that asked for the change."
        )
    if change.used_at is not None:
        raise EmailLinkUnusable(
            "This link was already used, or replaced by a newer one, or your password was "
            "changed since. Ask for the change again."
        )
    now = datetime.now(UTC)
    if change.expires_at <= now:
        raise EmailLinkUnusable("This link has expired. Ask for the change again.")
    if await find_user_by_email(session, change.new_email) is not None:
        raise Conflict(ADDRESS_TAKEN, field="email")
    change.used_at = now
    user.email = change.new_email
    await session.flush()
    # The trail's label follows the address: the old one is no longer needed there.
    await audit.record(
        session,
        action="account.email.changed",
        actor=_actor(user),
        target_type="user",
        target_id=str(user.id),
    )


async def _void_pending(session: AsyncSession, user: User, now: datetime) -> None:
    await session.execute(
        update(EmailChange)
        .where(EmailChange.user_id == user.id, EmailChange.used_at.is_(None))
        .values(used_at=now)
    )


async def prune_expired(session: AsyncSession, *, now: datetime | None = None) -> None:
    """Confirmation links used, replaced or expired more than a day ago: nothing left to
    confirm, and the address in them is someone's."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=1)
    await session.execute(
        delete(EmailChange).where(
            (EmailChange.expires_at < cutoff) | (EmailChange.used_at < cutoff)
        )
    )
