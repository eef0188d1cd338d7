"""/api/v1/privacy/requests: data-subject requests (policy §14 and §15), tracked from the
day they are received to the day they are answered, with what was done on the way."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.errors import Conflict, InvalidInput, NotFound
from cybergine.pagination import MAX_LENGTH
from cybergine.privacy import request_actions, requests
from cybergine.privacy.request_models import (
    PrivacyRequest,
    RefusalReason,
    RequestChannel,
    RequestKind,
    RequestStatus,
    Verification,
    VerificationMethod,
)
from cybergine.web.deps import SettingsDep
from cybergine.web.openapi import may_answer

router = APIRouter(prefix="/api/v1/privacy", tags=["privacy"])

Officer = Annotated[Caller, authorize(Permission.CUSTOMER_DATA_MANAGE)]


class RequestOut(BaseModel):
    id: uuid.UUID
    kind: RequestKind
    customer_id: uuid.UUID | None
    user_id: uuid.UUID | None
    channel: RequestChannel
    message_id: uuid.UUID | None
    received_at: datetime
    due_at: datetime
    overdue: bool = Field(description="Still waiting for the team after its due date")
    verification: Verification
    verification_method: VerificationMethod | None
    verified_by_user_id: uuid.UUID | None
    verified_at: datetime | None
    status: RequestStatus
    refusal_reason: RefusalReason | None
    closed_at: datetime | None

    @classmethod
    def of(cls, request: PrivacyRequest) -> RequestOut:
        return cls(
            id=request.id,
            kind=request.kind,
            customer_id=request.customer_id,
            user_id=request.user_id,
            channel=request.channel,
            message_id=request.message_id,
            received_at=request.received_at,
            due_at=request.due_at,
            overdue=requests.is_overdue(request),
            verification=request.verification,
            verification_method=request.verification_method,
            verified_by_user_id=request.verified_by_user_id,
            verified_at=request.verified_at,
            status=request.status,
            refusal_reason=request.refusal_reason,
            closed_at=request.closed_at,
        )


class StepOut(BaseModel):
    at: datetime
    action: str
    actor_type: str
    actor: str | None
    details: dict[str, Any]


class RequestDetail(RequestOut):
    trail: list[StepOut] = Field(description="What was done, oldest first (the audit trail)")


class RequestPage(BaseModel):
    items: list[RequestOut]
    next_cursor: str | None


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: RequestKind
    customer_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = Field(default=None, description="A staff user's own request")
    channel: RequestChannel = RequestChannel.API
    received_at: datetime | None = Field(
        default=None, description="When it reached the organisation (default: now)"
    )


class RequestPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verification: Verification | None = None
    verification_method: VerificationMethod | None = None
    status: RequestStatus | None = None
    refusal_reason: RefusalReason | None = None


class CarryOutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(
        default=None, max_length=1000, description="Rectification: the corrected name"
    )
    phone_number: str | None = Field(
        default=None, max_length=100, description="Rectification: the corrected number"
    )


class CarriedOutOut(BaseModel):
    request: RequestOut
    export: dict[str, Any] | None = Field(
        default=None, description="Access and portability: everything held about the customer"
    )
    details: dict[str, Any]


@router.get("/requests", response_model=RequestPage, summary="Data-subject requests")
async def list_requests(
    caller: Officer,
    status: Annotated[list[RequestStatus] | None, Query()] = None,
    overdue: bool | None = None,
    customer_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=requests.PAGE_MAX)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=MAX_LENGTH, description="next_cursor of the last page")
    ] = None,
) -> RequestPage:
    """Requests still waiting first, the earliest due (overdue) on top, then closed ones."""
    page = await requests.list_requests(
        caller.scope,
        statuses=status or (),
        overdue=overdue,
        customer_id=customer_id,
        cursor=cursor,
        limit=limit,
    )
    return RequestPage(
        items=[RequestOut.of(r) for r in page.requests], next_cursor=page.next_cursor
    )


@router.post(
    "/requests",
    response_model=RequestOut,
    status_code=201,
    # The customer or staff user named may be no one of this organisation.
    responses=may_answer(NotFound),
    summary="Record a request",
)
async def create_request(body: RequestIn, caller: Officer) -> RequestOut:
    request = await requests.open_request(
        caller.scope,
        caller.principal.actor,
        kind=body.kind,
        channel=body.channel,
        customer_id=body.customer_id,
        user_id=body.user_id,
        received_at=body.received_at,
    )
    return RequestOut.of(request)


@router.get("/requests/{request_id}", response_model=RequestDetail)
async def get_request(request_id: uuid.UUID, caller: Officer) -> RequestDetail:
    return await _detail(caller, request_id)


@router.patch(
    "/requests/{request_id}",
    response_model=RequestDetail,
    responses=may_answer(Conflict),
    summary="Verify the person, move the request on, or refuse it",
)
async def update_request(
    request_id: uuid.UUID, body: RequestPatch, caller: Officer
) -> RequestDetail:
    if (body.verification is None) != (body.verification_method is None):
        raise InvalidInput(
            "Give the verification's outcome and how it was checked together.",
            field="verification_method",
        )
    if body.verification is not None and body.verification_method is not None:
        await requests.verify_identity(
            caller.scope,
            caller.principal,
            request_id,
            outcome=body.verification,
            method=body.verification_method,
        )
    if body.status is not None:
        await requests.set_status(
            caller.scope,
            caller.principal,
            request_id,
            body.status,
            refusal_reason=body.refusal_reason,
        )
    elif body.refusal_reason is not None:
        await requests.set_status(
            caller.scope,
            caller.principal,
            request_id,
            RequestStatus.REFUSED,
            refusal_reason=body.refusal_reason,
        )
    return await _detail(caller, request_id)


@router.post(
    "/requests/{request_id}/carry-out",
    response_model=CarriedOutOut,
    responses=may_answer(Conflict),
    summary="Do what the request asks (export, erase, correct, restrict, object) and close it",
)
async def carry_out(
    request_id: uuid.UUID, body: CarryOutIn, caller: Officer, settings: SettingsDep
) -> CarriedOutOut:
    rectification = (
        request_actions.Rectification(body.display_name, body.phone_number)
        if body.display_name is not None or body.phone_number is not None
        else None
    )
    done = await request_actions.carry_out(
        caller.scope,
        caller.principal,
        request_id,
        rectification=rectification,
        public_url=settings.public_url,
    )
    return CarriedOutOut(
        request=RequestOut.of(done.request), export=done.export, details=done.details
    )


@router.delete(
    "/restrictions/{customer_id}",
    status_code=204,
    responses=may_answer(Conflict),
    summary="Lift the restriction of processing of a customer's data",
)
async def lift_restriction(customer_id: uuid.UUID, caller: Officer) -> None:
    await request_actions.lift_restriction(caller.scope, caller.principal, customer_id)


async def _detail(caller: Caller, request_id: uuid.UUID) -> RequestDetail:
    request = await requests.get_request(caller.scope, request_id)
    steps = await requests.trail(caller.scope, request)
    return RequestDetail(
        **RequestOut.of(request).model_dump(),
        trail=[
            StepOut(
                at=s.at,
                action=s.action,
                actor_type=s.actor_type,
                actor=s.actor_label,
                details=s.details,
            )
            for s in steps
        ],
    )
