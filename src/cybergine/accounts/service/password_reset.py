"""Password reset by e-mailed single-use link. Asking for a reset answers the same
whether or not the address has an account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts import passwords
from cybergine.accounts.models import PasswordResetToken, User
from cybergine.accounts.service.users import find_user_by_email, normalise_email, set_password
from cybergine.accounts.tokens import new_token, token_hash
from cybergine.errors import CybergineError, InvalidInput
from cybergine.mail.service import queue_email
from cybergine.privacy import audit

RESET_LIFETIME = timedelta(hours=1)


class ResetLinkUnusable(CybergineError):
    status = 410
    type_slug = "reset-link-unusable"
    title = "Reset link no longer valid"


async def request_reset(session: AsyncSession, *, email: str, public_url: str) -> None:
    try:
        email = normalise_email(email)
    except InvalidInput:
        return
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
        raise ResetLinkUnusable("This reset link was already used. Ask for a new one.")
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
