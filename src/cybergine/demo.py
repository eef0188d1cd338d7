"""`cybergine demo`: seed a demo organisation. Idempotent: running it again changes nothing.

Later domains add what they seed here (users, an assistant, a knowledge base, the shop).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts import service as accounts

DEMO_ORGANISATION_NAME = "Demo Shop"


@dataclass(frozen=True)
class DemoSeed:
    organisation_id: str
    created: bool


async def seed_demo(session: AsyncSession) -> DemoSeed:
    existing = await accounts.find_organisation_by_name(session, DEMO_ORGANISATION_NAME)
    if existing is not None:
        return DemoSeed(organisation_id=str(existing.id), created=False)
    organisation = await accounts.create_organisation(session, name=DEMO_ORGANISATION_NAME)
    return DemoSeed(organisation_id=str(organisation.id), created=True)
