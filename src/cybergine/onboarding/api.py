"""/api/v1/overview: where an organisation stands in getting started, and today's numbers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.conversations.activity import today_numbers
from cybergine.onboarding.schemas import OverviewOut
from cybergine.onboarding.service import checklist

router = APIRouter(prefix="/api/v1/overview", tags=["overview"])


@router.get(
    "", response_model=OverviewOut, summary="Get the getting-started checklist and today's numbers"
)
async def get_overview(
    caller: Annotated[Caller, authorize(Permission.CONVERSATIONS_READ)],
) -> OverviewOut:
    return OverviewOut.of(await checklist(caller.scope), await today_numbers(caller.scope))
