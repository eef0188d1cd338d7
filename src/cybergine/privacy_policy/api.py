"""``/api/v1/privacy-policy``: the versions of the platform's privacy policy, for every
member of a team (announced ahead, policy §18)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.privacy_policy import service

router = APIRouter(prefix="/api/v1/privacy-policy", tags=["privacy"])


class PolicyVersionOut(BaseModel):
    id: uuid.UUID
    effective_on: date = Field(description="When it takes effect (announced 30 days ahead).")
    url: str = Field(description="Where it is published.")
    summary: str = Field(description="What changes.")
    announced_at: datetime
    in_effect: bool


@router.get(
    "/versions",
    response_model=list[PolicyVersionOut],
    summary="Versions of the platform's privacy policy, the newest first",
)
async def list_versions(
    caller: Annotated[Caller, authorize(Permission.ORGANISATION_READ)],
) -> list[PolicyVersionOut]:
    today = datetime.now(UTC).date()
    return [
        PolicyVersionOut(
            id=version.id,
            effective_on=version.effective_on,
            url=version.url,
            summary=version.summary,
            announced_at=version.created_at,
            in_effect=version.effective_on <= today,
        )
        for version in await service.list_versions(caller.session)
    ]
