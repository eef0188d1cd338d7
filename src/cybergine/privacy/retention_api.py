"""/api/v1/organisation/retention: how long the organisation keeps conversation history
(policy §11)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.privacy import retention_settings
from cybergine.privacy.retention import CONVERSATION_DAYS_MAX, CONVERSATION_DAYS_MIN

router = APIRouter(prefix="/api/v1/organisation", tags=["organisation"])

ConversationDays = Annotated[
    int | None,
    Field(
        ge=CONVERSATION_DAYS_MIN,
        le=CONVERSATION_DAYS_MAX,
        description=(
            "Days after a conversation's last activity when it is purged, with its "
            "messages, attachments and raw events; null: kept while the account is active."
        ),
    ),
]


class RetentionOut(BaseModel):
    conversation_days: ConversationDays


class RetentionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_days: ConversationDays


@router.get("/retention", response_model=RetentionOut, summary="The retention settings")
async def get_retention(
    caller: Annotated[Caller, authorize(Permission.ORGANISATION_READ)],
) -> RetentionOut:
    return RetentionOut(conversation_days=await retention_settings.conversation_days(caller.scope))


@router.put("/retention", response_model=RetentionOut, summary="Change the retention settings")
async def set_retention(
    body: RetentionIn,
    caller: Annotated[Caller, authorize(Permission.ORGANISATION_UPDATE)],
) -> RetentionOut:
    await retention_settings.set_conversation_days(
        caller.scope, caller.principal, body.conversation_days
    )
    return RetentionOut(conversation_days=body.conversation_days)
