"""Privacy requests: the data-subject requests (policy §14 and §15) the team answers,
open and overdue ones first; a request's page to verify who asked, carry it out (export,
erasure, correction, restriction, objection), refuse it with a reason or mark it done,
with what was done so far. The same functions as ``/api/v1/privacy/requests``."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from cybergine import pagination
from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.accounts.service import team
from cybergine.conversations.inbox_views import customer_label
from cybergine.conversations.models import Customer
from cybergine.dashboard.forms import fields
from cybergine.dashboard.templating import redirect, render_page
from cybergine.errors import CybergineError, InvalidInput
from cybergine.privacy import request_actions, requests
from cybergine.privacy.api import export_response
from cybergine.privacy.request_models import (
    RESPONSE_DAYS,
    PrivacyRequest,
    RefusalReason,
    RequestChannel,
    RequestKind,
    RequestStatus,
    Verification,
    VerificationMethod,
)
from cybergine.web.deps import SettingsDep

router = APIRouter(include_in_schema=False)

E = TypeVar("E", bound=enum.StrEnum)

Officer = Annotated[Caller, authorize(Permission.CUSTOMER_DATA_MANAGE)]

# How the team reads the fixed values.
KIND_NAMES = {
    RequestKind.ACCESS: "Access (a copy of their data)",
    RequestKind.PORTABILITY: "Portability (their data, machine-readable)",
    RequestKind.RECTIFICATION: "Rectification (correct their details)",
    RequestKind.ERASURE: "Erasure",
    RequestKind.RESTRICTION: "Restriction of processing",
    RequestKind.OBJECTION: "Objection (people only, no assistant)",
    RequestKind.HUMAN_REVIEW: "Human review of an automated decision",
}
CARRY_OUT = {
    RequestKind.ACCESS: "Download their data (JSON) and close the request",
    RequestKind.PORTABILITY: "Download their data (JSON) and close the request",
    RequestKind.RECTIFICATION: "Save the corrections and close the request",
    RequestKind.ERASURE: "Erase their data and close the request",
    RequestKind.RESTRICTION: "Restrict processing and close the request",
    RequestKind.OBJECTION: "Hand them to people only and close the request",
    RequestKind.HUMAN_REVIEW: "A person reviewed the decision: close the request",
}
CHANNEL_NAMES = {
    RequestChannel.WHATSAPP: "WhatsApp",
    RequestChannel.WEBCHAT: "Web chat",
    RequestChannel.DASHBOARD: "Dashboard",
    RequestChannel.API: "API",
    RequestChannel.EMAIL: "E-mail",
    RequestChannel.SHOPIFY: "Shopify",
}
STATUS_NAMES = {
    RequestStatus.OPEN: "Open",
    RequestStatus.IN_PROGRESS: "In progress",
    RequestStatus.DONE: "Done",
    RequestStatus.REFUSED: "Refused",
}
VERIFICATION_NAMES = {
    Verification.UNVERIFIED: "Not verified yet",
    Verification.VERIFIED: "Verified",
    Verification.FAILED: "Could not be verified",
}
METHOD_NAMES = {
    VerificationMethod.SAME_CHANNEL: "They asked from their own WhatsApp number or chat",
    VerificationMethod.KNOWN_DETAILS: "They confirmed details only they know",
    VerificationMethod.DOCUMENT: "An identity document or signed letter was checked",
    VerificationMethod.SIGNED_IN: "A staff user asking about their own account, signed in",
}
REFUSAL_NAMES = {
    RefusalReason.IDENTITY_NOT_VERIFIED: "Their identity could not be verified",
    RefusalReason.LEGAL_RETENTION: "The law requires us to keep the data",
    RefusalReason.MANIFESTLY_UNFOUNDED: "Manifestly unfounded or excessive",
    RefusalReason.DUPLICATE: "A duplicate of another request",
    RefusalReason.NO_DATA_HELD: "We hold no data about them",
    RefusalReason.WITHDRAWN: "They withdrew the request",
}
# Entries of the request's trail, as the team reads them.
ACTION_NAMES = {
    "privacy.request.opened": "Request recorded",
    "privacy.request.verified": "Identity checked",
    "privacy.request.status_changed": "Status changed",
    "customer.exported": "Their data was exported",
    "customer.erased": "Their data was erased",
    "customer.rectified": "Their details were corrected",
    "customer.processing_restricted": "Processing restricted",
    "customer.restriction_lifted": "Restriction lifted",
    "customer.objected": "Handed to people only",
}
_NAMES = {
    "kind_names": KIND_NAMES,
    "carry_out_labels": CARRY_OUT,
    "channel_names": CHANNEL_NAMES,
    "status_names": STATUS_NAMES,
    "verification_names": VERIFICATION_NAMES,
    "method_names": METHOD_NAMES,
    "refusal_names": REFUSAL_NAMES,
    "action_names": ACTION_NAMES,
    "response_days": RESPONSE_DAYS,
}
# What the team may record by hand: chat requests are recorded by the chat itself.
RECORDED_BY_HAND = (RequestChannel.EMAIL, RequestChannel.DASHBOARD)


@router.get("/privacy/requests", response_class=HTMLResponse)
async def requests_page(
    request: Request,
    caller: Officer,
    overdue: bool | None = None,
    cursor: Annotated[str | None, Query(max_length=pagination.MAX_LENGTH)] = None,
) -> HTMLResponse:
    return await _list_page(request, caller, overdue=overdue, cursor=cursor)


async def _list_page(
    request: Request,
    caller: Caller,
    *,
    overdue: bool | None = None,
    cursor: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    page = await requests.list_requests(
        caller.scope, overdue=True if overdue else None, cursor=cursor or None
    )
    query = {"overdue": "1"} if overdue else {}
    return await render_page(
        request,
        "privacy_requests.html",
        caller,
        {
            **_NAMES,
            "page": page,
            "labels": await _labels(caller, page.requests),
            "now": datetime.now(UTC),
            "overdue_only": bool(overdue),
            "overdue_count": await requests.count_overdue(caller.scope),
            "kinds": list(RequestKind),
            "hand_channels": RECORDED_BY_HAND,
            "members": await team.list_members(caller.scope),
            "form": {},
            "error": None,
            "next_url": f"/privacy/requests?{urlencode({**query, 'cursor': page.next_cursor})}"
            if page.next_cursor
            else None,
            **extra,
        },
        status_code=status_code,
    )


@router.post("/privacy/requests")
async def record_request(request: Request, caller: Officer) -> Response:
    form = await fields(request, "kind", "customer_id", "user_id", "channel")
    try:
        kind = _choice(RequestKind, form["kind"], "kind")
        channel = _choice(RequestChannel, form["channel"], "channel")
        if channel not in RECORDED_BY_HAND:
            raise InvalidInput("Record requests that came by e-mail or to the team.")
        customer_id = _id(form["customer_id"], "customer_id")
        user_id = _id(form["user_id"], "user_id")
        if (customer_id is None) == (user_id is None):
            raise InvalidInput(
                "Paste the customer's id from their page (Customers), or choose a member "
                "of the team.",
                field="customer_id",
            )
        async with caller.session.begin_nested():
            opened = await requests.open_request(
                caller.scope,
                caller.principal.actor,
                kind=kind,
                channel=channel,
                customer_id=customer_id,
                user_id=user_id,
            )
    except CybergineError as exc:
        return await _list_page(
            request, caller, form=form, error=exc.detail, status_code=exc.status
        )
    return redirect(f"/privacy/requests/{opened.id}", notice="request-recorded")


@router.get("/privacy/requests/{request_id}", response_class=HTMLResponse)
async def request_page(request: Request, request_id: uuid.UUID, caller: Officer) -> HTMLResponse:
    return await _request_page(request, caller, request_id)


async def _request_page(
    request: Request,
    caller: Caller,
    request_id: uuid.UUID,
    *,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    found = await requests.get_request(caller.scope, request_id)
    customer = await caller.scope.find(Customer, found.customer_id) if found.customer_id else None
    return await render_page(
        request,
        "privacy_request.html",
        caller,
        {
            **_NAMES,
            "r": found,
            "customer": customer,
            "customer_label": customer_label(customer) if customer else None,
            "member_name": next(
                (
                    m.user.name
                    for m in await team.list_members(caller.scope)
                    if m.user.id == found.user_id
                ),
                None,
            )
            if found.user_id
            else None,
            "overdue": requests.is_overdue(found),
            "still_open": found.status in requests.ACTIVE,
            "trail": await requests.trail(caller.scope, found),
            "methods": list(VerificationMethod),
            "reasons": list(RefusalReason),
            "form": {},
            "error": None,
            **extra,
        },
        status_code=status_code,
    )


@router.post("/privacy/requests/{request_id}/verify")
async def verify(request: Request, request_id: uuid.UUID, caller: Officer) -> Response:
    form = await fields(request, "verification", "method")

    async def act() -> None:
        await requests.verify_identity(
            caller.scope,
            caller.principal,
            request_id,
            outcome=_choice(Verification, form["verification"], "verification"),
            method=_choice(VerificationMethod, form["method"], "method"),
        )

    return await _acting(request, caller, request_id, form, act, notice="request-updated")


@router.post("/privacy/requests/{request_id}/status")
async def change_status(request: Request, request_id: uuid.UUID, caller: Officer) -> Response:
    form = await fields(request, "status", "refusal_reason")

    async def act() -> None:
        status = _choice(RequestStatus, form["status"], "status")
        reason = (
            _choice(RefusalReason, form["refusal_reason"], "refusal_reason")
            if status == RequestStatus.REFUSED
            else None
        )
        await requests.set_status(
            caller.scope, caller.principal, request_id, status, refusal_reason=reason
        )

    return await _acting(request, caller, request_id, form, act, notice="request-updated")


@router.post("/privacy/requests/{request_id}/carry-out")
async def carry_out(
    request: Request, request_id: uuid.UUID, caller: Officer, settings: SettingsDep
) -> Response:
    form = await fields(request, "display_name", "phone_number")
    found = await requests.get_request(caller.scope, request_id)
    rectification = (
        request_actions.Rectification(form["display_name"], form["phone_number"])
        if found.kind == RequestKind.RECTIFICATION
        else None
    )
    try:
        async with caller.session.begin_nested():
            done = await request_actions.carry_out(
                caller.scope,
                caller.principal,
                request_id,
                rectification=rectification,
                public_url=settings.public_url,
            )
    except CybergineError as exc:
        if exc.status == 404:
            raise
        return await _request_page(
            request, caller, request_id, form=form, error=exc.detail, status_code=exc.status
        )
    if done.export is not None and done.request.customer_id is not None:
        return export_response(done.export, done.request.customer_id)
    return redirect(f"/privacy/requests/{request_id}", notice="request-carried-out")


@router.post("/privacy/requests/{request_id}/lift-restriction")
async def lift_restriction(request: Request, request_id: uuid.UUID, caller: Officer) -> Response:
    found = await requests.get_request(caller.scope, request_id)

    async def act() -> None:
        if found.customer_id is None:
            raise InvalidInput("This request names no customer.")
        await request_actions.lift_restriction(
            caller.scope, caller.principal, found.customer_id, request_id=found.id
        )

    return await _acting(request, caller, request_id, {}, act, notice="restriction-lifted")


async def _acting(
    request: Request,
    caller: Caller,
    request_id: uuid.UUID,
    form: dict[str, str],
    act: Any,
    *,
    notice: str,
) -> Response:
    """Run ``act`` in a savepoint; a refusal is shown on the request's page."""
    try:
        async with caller.session.begin_nested():
            await act()
    except CybergineError as exc:
        if exc.status == 404:
            raise
        return await _request_page(
            request, caller, request_id, form=form, error=exc.detail, status_code=exc.status
        )
    return redirect(f"/privacy/requests/{request_id}", notice=notice)


def _choice(values: type[E], typed: str, field: str) -> E:
    try:
        return values(typed)
    except ValueError:
        raise InvalidInput("Choose one of the options.", field=field) from None


def _id(typed: str, field: str) -> uuid.UUID | None:
    if not typed.strip():
        return None
    try:
        return uuid.UUID(typed.strip())
    except ValueError:
        raise InvalidInput(
            "Paste the customer's id from their page (Customers).", field=field
        ) from None


async def _labels(caller: Caller, found: list[PrivacyRequest]) -> dict[uuid.UUID, str]:
    """The customers' names as the inbox shows them, for one page of requests."""
    ids = {r.customer_id for r in found if r.customer_id is not None}
    if not ids:
        return {}
    rows = await caller.session.execute(caller.scope.select(Customer).where(Customer.id.in_(ids)))
    return {c.id: customer_label(c) for c in rows.scalars()}
