"""Signing in with e-mail and password, throttled per account and per IP address.

The answer never tells whether an e-mail address is registered: a wrong password and an
unknown address get the same message, take the same time (a dummy hash is verified),
and are throttled the same way. The attempt is counted (and committed) before the
password is checked, so concurrent guesses cannot all slip under the limit
(``cybergine.accounts.throttle``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from email_validator import EmailNotValidError
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts import passwords, throttle
from cybergine.accounts.models import User
from cybergine.accounts.service.users import find_user_by_email, normalise_email
from cybergine.accounts.tokens import keyed_hash
from cybergine.db.engine import Database
from cybergine.errors import InvalidInput
from cybergine.privacy import audit

WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_IP = 30
PER_ACCOUNT = throttle.Limit("login-account", MAX_FAILURES_PER_ACCOUNT, WINDOW)
PER_IP = throttle.Limit("login-ip", MAX_FAILURES_PER_IP, WINDOW)

WRONG_CREDENTIALS = "That e-mail address and password do not match an account."
THROTTLED = "Too many sign-in attempts. Wait 15 minutes, or reset your password."


@dataclass(frozen=True)
class LoginOutcome:
    user: User | None
    error: str | None


async def sign_in(
    session: AsyncSession, database: Database, *, email: str, password: str, ip: str
) -> LoginOutcome:
    """``database`` records the attempt on a connection of its own, committed before the
    password is checked."""
    try:
        email = normalise_email(email)
    except (InvalidInput, EmailNotValidError):
        email = email.strip().lower()
    # Only a prefix of the account's keyed hash goes to the audit trail: whatever was
    # typed may not be anyone's address, and the trail is kept for years.
    account_ref = keyed_hash(PER_ACCOUNT.purpose, email)[:16]

    admission = await throttle.admit(
        database, (PER_ACCOUNT, email), (PER_IP, throttle.address_block(ip))
    )
    if admission.refused_by is not None:
        await audit.record(
            session,
            action="auth.login.throttled",
            actor=audit.Actor(audit.ActorType.USER),
            details={
                "limit": "account" if admission.refused_by is PER_ACCOUNT else "ip",
                "account_key": account_ref,
            },
        )
        return LoginOutcome(user=None, error=THROTTLED)

    user = await find_user_by_email(session, email)
    valid = await passwords.verify_password(user.password_hash if user else None, password)
    if not valid or user is None:
        await audit.record(
            session,
            action="auth.login.failed",
            actor=(
                audit.Actor.user(str(user.id), email=user.email)
                if user
                else audit.Actor(audit.ActorType.USER)
            ),
            details={"account_key": account_ref},
        )
        return LoginOutcome(user=None, error=WRONG_CREDENTIALS)

    await throttle.forgive(session, admission)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash_password(password)
    await audit.record(
        session,
        action="auth.login.succeeded",
        actor=audit.Actor.user(str(user.id), email=user.email),
    )
    return LoginOutcome(user=user, error=None)
