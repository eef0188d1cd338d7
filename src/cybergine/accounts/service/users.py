"""Users: e-mail normalisation, sign-up, password changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts import passwords
from cybergine.accounts.models import (
    EmailChange,
    Membership,
    Organisation,
    PasswordResetToken,
    Role,
    User,
    UserSession,
)
from cybergine.accounts.service.organisations import create_organisation
from cybergine.errors import Conflict, InvalidInput
from cybergine.privacy import audit

MAX_NAME = 200


def normalise_email(email: str) -> str:
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput("Enter a valid e-mail address.", field="email") from exc
    return result.normalized.lower()


def clean_name(name: str, *, what: str = "your name") -> str:
    name = " ".join(name.split())
    if not name:
        raise InvalidInput(f"Enter {what}.", field="name")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"Keep {what} under {MAX_NAME} characters.", field="name")
    return name


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def create_user(session: AsyncSession, *, email: str, name: str, password: str) -> User:
    email = normalise_email(email)
    name = clean_name(name)
    passwords.check_policy(password, email=email)
    if await find_user_by_email(session, email) is not None:
        raise Conflict(
            "An account with this e-mail address already exists. Sign in, or reset your "
            "password if you forgot it.",
            field="email",
        )
    user = User(email=email, name=name, password_hash=await passwords.hash_password(password))
    session.add(user)
    await session.flush()
    return user


async def sign_up(
    session: AsyncSession, *, email: str, name: str, password: str, organisation_name: str
) -> tuple[User, Organisation]:
    """A new person with a new organisation, of which they are the owner."""
    organisation_name = clean_name(organisation_name, what="your organisation's name")
    user = await create_user(session, email=email, name=name, password=password)
    organisation = await create_organisation(session, name=organisation_name)
    session.add(Membership(organisation_id=organisation.id, user_id=user.id, role=Role.OWNER))
    await session.flush()
    await audit.record(
        session,
        action="account.signed_up",
        actor=audit.Actor.user(str(user.id), email=user.email),
        organisation_id=organisation.id,
        target_type="user",
        target_id=str(user.id),
    )
    return user, organisation


async def change_password(
    session: AsyncSession,
    *,
    user: User,
    current_password: str,
    new_password: str,
    keep_session_id: uuid.UUID | None = None,
) -> None:
    """Changing the password signs out every other browser of this user."""
    if not await passwords.verify_password(user.password_hash, current_password):
        raise InvalidInput("Your current password is not right.", field="current_password")
    passwords.check_policy(new_password, email=user.email)
    await set_password(session, user=user, password=new_password, keep_session_id=keep_session_id)
    await audit.record(
        session,
        action="account.password.changed",
        actor=audit.Actor.user(str(user.id), email=user.email),
        target_type="user",
        target_id=str(user.id),
    )


async def set_password(
    session: AsyncSession, *, user: User, password: str, keep_session_id: uuid.UUID | None = None
) -> None:
    """Signs out the user's other browsers and voids all their reset links and pending
    e-mail changes: a link sent before the change must not undo it, nor move the account
    to an address someone who knew the old password chose."""
    now = datetime.now(UTC)
    user.password_hash = await passwords.hash_password(password)
    user.password_changed_at = now
    for link in (PasswordResetToken, EmailChange):
        await session.execute(
            update(link).where(link.user_id == user.id, link.used_at.is_(None)).values(used_at=now)
        )
    statement = delete(UserSession).where(UserSession.user_id == user.id)
    if keep_session_id is not None:
        statement = statement.where(UserSession.id != keep_session_id)
    await session.execute(statement)
    await session.flush()


async def memberships_of(
    session: AsyncSession, user_id: uuid.UUID
) -> list[tuple[Membership, Organisation]]:
    result = await session.execute(
        select(Membership, Organisation)
        .join(Organisation, Organisation.id == Membership.organisation_id)
        .where(Membership.user_id == user_id)
        .order_by(Organisation.name, Organisation.id)
    )
    return [(membership, organisation) for membership, organisation in result.all()]


async def membership(
    session: AsyncSession, *, user_id: uuid.UUID, organisation_id: uuid.UUID
) -> Membership | None:
    result = await session.execute(
        select(Membership).where(
            Membership.user_id == user_id, Membership.organisation_id == organisation_id
        )
    )
    return result.scalar_one_or_none()
