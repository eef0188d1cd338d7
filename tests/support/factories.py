"""Plain factory functions for accounts: each commits its own rows."""

from __future__ import annotations

import uuid

from cybergine.accounts.models import Membership, Organisation, Role, User
from cybergine.accounts.service import api_keys, users
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope

PASSWORD = "correct horse battery"


def unique_email(stem: str = "person") -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}@example.com"


async def make_user(
    database: Database,
    *,
    email: str | None = None,
    name: str = "Pat Example",
    password: str = PASSWORD,
) -> User:
    async with database.transaction() as session:
        return await users.create_user(
            session, email=email or unique_email(), name=name, password=password
        )


async def make_organisation(
    database: Database, *, name: str = "Acme", owner_email: str | None = None
) -> tuple[Organisation, User]:
    async with database.transaction() as session:
        user, organisation = await users.sign_up(
            session,
            email=owner_email or unique_email("owner"),
            name="Olive Owner",
            password=PASSWORD,
            organisation_name=name,
        )
        return organisation, user


async def add_member(
    database: Database, organisation_id: uuid.UUID, role: Role, *, email: str | None = None
) -> tuple[User, Membership]:
    user = await make_user(
        database, email=email or unique_email(role.value), name=f"{role.value.title()} Person"
    )
    async with database.transaction() as session:
        membership = Membership(organisation_id=organisation_id, user_id=user.id, role=role)
        session.add(membership)
        await session.flush()
        return user, membership


async def make_api_key(
    database: Database, organisation_id: uuid.UUID, role: Role = Role.OWNER
) -> str:
    async with database.transaction() as session:
        created = await api_keys.create_api_key(
            TenantScope(session, organisation_id), None, name=f"{role.value} key", role=role
        )
        return created.secret


async def make_organisation_with_key(
    database: Database, *, name: str = "Acme", role: Role = Role.OWNER
) -> tuple[Organisation, str]:
    organisation, _ = await make_organisation(database, name=name)
    return organisation, await make_api_key(database, organisation.id, role)
