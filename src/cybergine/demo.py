"""`cybergine demo`: seed a demo organisation with a signed-up owner. Idempotent: running
it again changes nothing.

Later domains add what they seed here (an assistant, a knowledge base, the shop).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.service import users

DEMO_ORGANISATION_NAME = "Demo Shop"
DEMO_OWNER_EMAIL = "demo@cybergine.example"
# Printed by `make run`: the demo is for a local machine, never for a public server.
DEMO_OWNER_PASSWORD = "demo-password"  # noqa: S105


@dataclass(frozen=True)
class DemoSeed:
    organisation_id: str
    created: bool


async def seed_demo(session: AsyncSession) -> DemoSeed:
    owner = await users.find_user_by_email(session, DEMO_OWNER_EMAIL)
    if owner is not None:
        (_membership, organisation), *_ = await users.memberships_of(session, owner.id)
        return DemoSeed(organisation_id=str(organisation.id), created=False)
    _, organisation = await users.sign_up(
        session,
        email=DEMO_OWNER_EMAIL,
        name="Dana Demo",
        password=DEMO_OWNER_PASSWORD,
        organisation_name=DEMO_ORGANISATION_NAME,
    )
    return DemoSeed(organisation_id=str(organisation.id), created=True)
