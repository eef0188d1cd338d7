"""Provisioning from the command line: an organisation, its owner and a first API key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts import passwords
from cybergine.accounts.models import Membership, Role
from cybergine.accounts.service import api_keys
from cybergine.accounts.service.organisations import create_organisation
from cybergine.accounts.service.users import (
    clean_name,
    create_user,
    find_user_by_email,
    normalise_email,
)
from cybergine.db.tenancy import TenantScope
from cybergine.errors import InvalidInput
from cybergine.privacy import audit


@dataclass(frozen=True)
class Provisioned:
    organisation_id: uuid.UUID
    owner_id: uuid.UUID
    api_key: str


async def create_organisation_with_owner(
    session: AsyncSession, *, name: str, owner_email: str, owner_password: str
) -> Provisioned:
    """An existing user becomes owner only with their current password; a new user is
    created with the password given."""
    name = clean_name(name, what="the organisation's name")
    email = normalise_email(owner_email)
    owner = await find_user_by_email(session, email)
    if owner is None:
        owner = await create_user(
            session, email=email, name=email.split("@")[0], password=owner_password
        )
    elif not await passwords.verify_password(owner.password_hash, owner_password):
        raise InvalidInput("That user exists and the password given is not theirs.")
    organisation = await create_organisation(session, name=name)
    session.add(Membership(organisation_id=organisation.id, user_id=owner.id, role=Role.OWNER))
    await session.flush()
    await audit.record(
        session,
        action="organisation.created",
        actor=audit.Actor.system("cli"),
        organisation_id=organisation.id,
        target_type="organisation",
        target_id=str(organisation.id),
        details={"owner_id": str(owner.id)},
    )
    created = await api_keys.create_api_key(
        TenantScope(session, organisation.id),
        None,
        name="Created with the organisation",
        role=Role.OWNER,
    )
    return Provisioned(organisation_id=organisation.id, owner_id=owner.id, api_key=created.secret)
