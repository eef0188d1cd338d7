"""Signing in with e-mail and password, throttled per account and per IP address.

The answer never tells whether an e-mail address is registered: a wrong password and an
unknown address get the same message, take the same time (a dummy hash is verified),
and are throttled the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from email_validator import EmailNotValidError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts import passwords
from cybergine.accounts.models import LoginAttempt, User
from cybergine.accounts.service.users import find_user_by_email, normalise_email
from cybergine.accounts.tokens import keyed_hash
from cybergine.errors import InvalidInput
from cybergine.privacy import audit

WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_IP = 30
ATTEMPTS_KEPT = timedelta(days=1)

WRONG_CREDENTIALS = "That e-mail address and password do not match an account."
THROTTLED = "Too many sign-in attempts. Wait 15 minutes, or reset your password."


@dataclass(frozen=True)
class LoginOutcome:
    user: User | None
    error: str | None


def _account_key(email: str) -> str:
    return keyed_hash("login-account", email)


def _ip_key(ip: str) -> str:
    return keyed_hash("login-ip", ip)


async def _recent_failures(session: AsyncSession, key: str, now: datetime) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.key_hash == key,
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.created_at > now - WINDOW,
        )
    )
    return int(count or 0)


async def sign_in(session: AsyncSession, *, email: str, password: str, ip: str) -> LoginOutcome:
    now = datetime.now(UTC)
    try:
        email = normalise_email(email)
    except (InvalidInput, EmailNotValidError):
        email = email.strip().lower()
    account_key, ip_key = _account_key(email), _ip_key(ip)

    throttled_by = (
        "account"
        if await _recent_failures(session, account_key, now) >= MAX_FAILURES_PER_ACCOUNT
        else "ip"
        if await _recent_failures(session, ip_key, now) >= MAX_FAILURES_PER_IP
        else None
    )
    if throttled_by:
        # No e-mail in the audit trail here: whatever was typed may not be anyone's
        # address, and the trail is kept for years.
        await audit.record(
            session,
            action="auth.login.throttled",
            actor=audit.Actor(audit.ActorType.USER),
            details={"limit": throttled_by, "account_key": account_key[:16]},
        )
        return LoginOutcome(user=None, error=THROTTLED)

    user = await find_user_by_email(session, email)
    valid = await passwords.verify_password(user.password_hash if user else None, password)
    session.add_all(
        [
            LoginAttempt(key_hash=account_key, succeeded=valid),
            LoginAttempt(key_hash=ip_key, succeeded=valid),
        ]
    )
    if not valid or user is None:
        await audit.record(
            session,
            action="auth.login.failed",
            actor=(
                audit.Actor.user(str(user.id), email=user.email)
                if user
                else audit.Actor(audit.ActorType.USER)
            ),
            details={"account_key": account_key[:16]},
        )
        return LoginOutcome(user=None, error=WRONG_CREDENTIALS)

    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash_password(password)
    await audit.record(
        session,
        action="auth.login.succeeded",
        actor=audit.Actor.user(str(user.id), email=user.email),
    )
    return LoginOutcome(user=user, error=None)


async def prune_attempts(session: AsyncSession, *, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    await session.execute(delete(LoginAttempt).where(LoginAttempt.created_at < now - ATTEMPTS_KEPT))
