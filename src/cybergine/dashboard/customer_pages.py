"""Customers: find one by name, phone number or visitor id; their page with their
conversations and consent; and what a customer may ask of the shop's data about them
(policy §14): a copy (the JSON export) and its erasure, behind a typed confirmation.

Export and erasure are the privacy domain's own functions, audited there, the same ones
``/api/v1/customers`` calls; the team sees those controls only with the permission for
them."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from cybergine import pagination
from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.conversations import customers
from cybergine.dashboard.forms import fields
from cybergine.dashboard.templating import redirect, render_page
from cybergine.errors import CybergineError
from cybergine.privacy import subjects
from cybergine.privacy.api import bundle_response, export_response

router = APIRouter(include_in_schema=False)

Reader = Annotated[Caller, authorize(Permission.CONVERSATIONS_READ)]
Officer = Annotated[Caller, authorize(Permission.CUSTOMER_DATA_MANAGE)]

CHANNEL_NAMES = {"whatsapp": "WhatsApp", "webchat": "Web chat"}
# Where consent was recorded, as a shop owner reads it (conversations.service writes these).
CONSENT_SOURCES = {
    "customer_message": "when they first wrote to you",
    "keyword": "by sending one of your opt-in or opt-out words",
    "api": "through the API",
}


@router.get("/customers", response_class=HTMLResponse)
async def customers_page(
    request: Request,
    caller: Reader,
    q: Annotated[str, Query(max_length=customers.MAX_QUERY)] = "",
    cursor: Annotated[str | None, Query(max_length=pagination.MAX_LENGTH)] = None,
) -> HTMLResponse:
    page = await customers.search_customers(caller.scope, q, cursor=cursor or None)
    query = {"q": q} if q else {}
    return await render_page(
        request,
        "customers.html",
        caller,
        {
            "q": q,
            "page": page,
            "channel_names": CHANNEL_NAMES,
            "next_url": f"/customers?{urlencode({**query, 'cursor': page.next_cursor})}"
            if page.next_cursor
            else None,
            "first_url": ("/customers" + (f"?{urlencode(query)}" if query else ""))
            if cursor
            else None,
        },
    )


async def _customer_page(
    request: Request,
    caller: Caller,
    customer_id: uuid.UUID,
    *,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    profile = await customers.customer_profile(caller.scope, customer_id)
    return await render_page(
        request,
        "customer.html",
        caller,
        {
            "profile": profile,
            "customer": profile.customer,
            "channel_names": CHANNEL_NAMES,
            "consent_sources": CONSENT_SOURCES,
            "can_manage_data": caller.principal.can(Permission.CUSTOMER_DATA_MANAGE),
            "confirmation_word": subjects.erasure_confirmation(profile.customer),
            "confirmation": "",
            "confirmation_error": None,
            **extra,
        },
        status_code=status_code,
    )


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer_page(request: Request, customer_id: uuid.UUID, caller: Reader) -> HTMLResponse:
    return await _customer_page(request, caller, customer_id)


@router.post("/customers/{customer_id}/export")
async def export_customer(customer_id: uuid.UUID, caller: Officer) -> Response:
    """The JSON download; a form posts here (with its CSRF token) since it is audited."""
    exported = await subjects.export_customer(caller.scope, caller.principal, customer_id)
    return export_response(exported, customer_id)


@router.post("/customers/{customer_id}/export/bundle")
async def export_customer_bundle(customer_id: uuid.UUID, caller: Officer) -> Response:
    """The signed ZIP bundle (their data, their files, a manifest); audited as the JSON."""
    exported = await subjects.export_customer(caller.scope, caller.principal, customer_id)
    return bundle_response(exported, customer_id)


@router.post("/customers/{customer_id}/erase")
async def erase_customer(request: Request, customer_id: uuid.UUID, caller: Officer) -> Response:
    form = await fields(request, "confirmation")
    try:
        async with caller.session.begin_nested():
            erasure = await subjects.erase_confirmed(
                caller.scope, caller.principal, customer_id, form["confirmation"]
            )
    except CybergineError as exc:
        if exc.status == 404:
            raise
        return await _customer_page(
            request,
            caller,
            customer_id,
            confirmation=form["confirmation"],
            confirmation_error=exc.detail,
            status_code=exc.status,
        )
    # A web visitor's record gets a new id when erased (the old one came from their token).
    return redirect(f"/customers/{erasure.customer_id}", notice="customer-erased")
