"""Browser sessions: server-side, revocable, with idle and absolute lifetimes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import User, UserSession
from cybergine.accounts.service.users import membership
from cybergine.accounts.tokens import new_token, token_hash
from cybergine.errors import NotFound

ABSOLUTE_LIFETIME = timedelta(days=14)
IDLE_LIFETIME = timedelta(days=2)
# Recording activity on every request would turn every page view into a write.
TOUCH_INTERVAL = timedelta(minutes=5)


@dataclass(frozen=True)
class Viewer:
    """Plain values about the signed-in person, safe to render after the request's
    transaction ended (an error page renders after the rollback)."""

    id: uuid.UUID
    name: str
    email: str


@dataclass(frozen=True)
class SignedIn:
    user_session: UserSession
    user: User
    session_id: uuid.UUID
    viewer: Viewer


async def create_session(
    session: AsyncSession, *, user: User, organisation_id: uuid.UUID | None
) -> tuple[UserSession, str]:
    """Returns the row and the cookie token (shown once; only its hash is stored)."""
    token = new_token()
    now = datetime.now(UTC)
    user_session = UserSession(
        token_hash=token_hash(token),
        user_id=user.id,
        active_organisation_id=organisation_id,
        last_seen_at=now,
        expires_at=now + ABSOLUTE_LIFETIME,
    )
    session.add(user_session)
    user.last_login_at = now
    await session.flush()
    return user_session, token


async def resume_session(session: AsyncSession, token: str) -> SignedIn | None:
    result = await session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == token_hash(token))
    )
    row = result.one_or_none()
    if row is None:
        return None
    user_session, user = row
    now = datetime.now(UTC)
    if user_session.expires_at <= now or user_session.last_seen_at + IDLE_LIFETIME <= now:
        await session.delete(user_session)
        return None
    if user_session.last_seen_at + TOUCH_INTERVAL <= now:
        user_session.last_seen_at = now
    return SignedIn(
        user_session=user_session,
        user=user,
        session_id=user_session.id,
        viewer=Viewer(id=user.id, name=user.name, email=user.email),
    )


async def end_session(session: AsyncSession, user_session: UserSession) -> None:
    await session.execute(delete(UserSession).where(UserSession.id == user_session.id))


async def switch_organisation(
    session: AsyncSession, user_session: UserSession, organisation_id: uuid.UUID
) -> None:
    if (
        await membership(session, user_id=user_session.user_id, organisation_id=organisation_id)
        is None
    ):
        raise NotFound("No such organisation.")
    user_session.active_organisation_id = organisation_id
    await session.flush()


async def prune_expired(session: AsyncSession, *, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    await session.execute(
        delete(UserSession).where(
            (UserSession.expires_at <= now) | (UserSession.last_seen_at <= now - IDLE_LIFETIME)
        )
    )
