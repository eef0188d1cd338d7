"""Password reset by e-mailed single-use link. Asking for a reset answers the same
whether or not the address has an account, and is throttled per address and per IP
address the same way either way. Setting a new password, by a link or otherwise, voids
every reset link of the account (``users.set_password``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts import passwords, throttle
from cybergine.accounts.models import PasswordResetToken, User
from cybergine.accounts.service.users import find_user_by_email, normalise_email, set_password
from cybergine.accounts.tokens import new_token, token_hash
from cybergine.db.engine import Database
from cybergine.errors import CybergineError, InvalidInput, TooManyRequests
from cybergine.mail.service import queue_email
from cybergine.privacy import audit

RESET_LIFETIME = timedelta(hours=1)
# Each request may send an e-mail: few per address (its owner needs one or two), more per
# IP address (an office asks for several people).
PER_ADDRESS = throttle.Limit("reset-account", 3, timedelta(hours=1))
PER_IP = throttle.Limit("reset-ip", 20, timedelta(hours=1))


class ResetLinkUnusable(CybergineError):
    status = 410
    type_slug = "reset-link-unusable"
    title = "Reset link no longer valid"


async def request_reset(
    session: AsyncSession, database: Database, *, email: str, ip: str, public_url: str
) -> None:
    """``database`` counts the request on a connection of its own before anything is
    sent (``cybergine.accounts.throttle``)."""
    try:
        email = normalise_email(email)
    except InvalidInput:
        return
    admission = await throttle.admit(
        database, (PER_ADDRESS, email), (PER_IP, throttle.address_block(ip))
    )
    if admission.refused_by is not None:
        raise TooManyRequests(
            "Too many password reset requests. Wait an hour, or look for the e-mails already sent.",
            retry_after=int(admission.refused_by.window.total_seconds()),
        )
    user = await find_user_by_email(session, email)
    if user is None:
        return
    token = new_token()
    session.add(
        PasswordResetToken(
            user_id=user.id,
            token_hash=token_hash(token),
            expires_at=datetime.now(UTC) + RESET_LIFETIME,
        )
    )
    await queue_email(
        session,
        to=user.email,
        subject="Reset your Cybergine password",
        body=(
            f"Hello {user.name},\n\n"
            f"Choose a new password here: {public_url}/password/reset/{token}\n\n"
            "The link works once and expires in one hour. If you did not ask for it, "
            "ignore this e-mail: your password stays as it is."
        ),
    )
    await audit.record(
        session,
        action="auth.password_reset.requested",
        actor=audit.Actor.user(str(user.id), email=user.email),
        target_type="user",
        target_id=str(user.id),
    )


async def find_reset(session: AsyncSession, token: str) -> tuple[PasswordResetToken, User]:
    result = await session.execute(
        select(PasswordResetToken, User)
        .join(User, User.id == PasswordResetToken.user_id)
        .where(PasswordResetToken.token_hash == token_hash(token))
        .with_for_update(of=PasswordResetToken)
    )
    row = result.one_or_none()
    if row is None:
        raise ResetLinkUnusable("This reset link is not valid. Ask for a new one.")
    reset, user = row
    if reset.used_at is not None:
        raise ResetLinkUnusable(
            "This reset link was already used, or the password was changed since it was "
            "sent. Ask for a new one."
        )
    if reset.expires_at <= datetime.now(UTC):
        raise ResetLinkUnusable("This reset link has expired. Ask for a new one.")
    return reset, user


async def reset_password(session: AsyncSession, *, token: str, password: str) -> User:
    """Sets the password and signs the user out everywhere."""
    reset, user = await find_reset(session, token)
    passwords.check_policy(password, email=user.email)
    reset.used_at = datetime.now(UTC)
    await set_password(session, user=user, password=password)
    await audit.record(
        session,
        action="auth.password_reset.completed",
        actor=audit.Actor.user(str(user.id), email=user.email),
        target_type="user",
        target_id=str(user.id),
    )
    return user


async def prune_expired(session: AsyncSession, *, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    await session.execute(
        delete(PasswordResetToken).where(PasswordResetToken.expires_at < now - timedelta(days=1))
    )
