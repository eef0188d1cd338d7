"""Settings → Retention: how long the organisation keeps conversation history (policy
§11), the same setting as ``PUT /api/v1/organisation/retention``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.dashboard.forms import fields
from cybergine.dashboard.templating import redirect, render_page
from cybergine.errors import CybergineError, InvalidInput
from cybergine.privacy import retention_settings
from cybergine.privacy.retention import CONVERSATION_DAYS_MAX, CONVERSATION_DAYS_MIN

router = APIRouter(include_in_schema=False)


async def _page(
    request: Request,
    caller: Caller,
    *,
    typed: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    days = await retention_settings.conversation_days(caller.scope)
    return await render_page(
        request,
        "retention.html",
        caller,
        {
            "conversation_days": typed if typed is not None else (days or ""),
            "saved_days": days,
            "minimum_days": CONVERSATION_DAYS_MIN,
            "maximum_days": CONVERSATION_DAYS_MAX,
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/settings/retention", response_class=HTMLResponse)
async def retention_page(
    request: Request, caller: Annotated[Caller, authorize(Permission.ORGANISATION_READ)]
) -> HTMLResponse:
    return await _page(request, caller)


@router.post("/settings/retention")
async def save_retention(
    request: Request, caller: Annotated[Caller, authorize(Permission.ORGANISATION_UPDATE)]
) -> Response:
    typed = (await fields(request, "conversation_days"))["conversation_days"].strip()
    try:
        if typed and not (typed.isascii() and typed.isdigit()):
            raise InvalidInput("Type a whole number of days, or leave the field empty.")
        async with caller.session.begin_nested():
            await retention_settings.set_conversation_days(
                caller.scope, caller.principal, int(typed) if typed else None
            )
    except CybergineError as exc:
        return await _page(request, caller, typed=typed, error=exc.detail, status_code=exc.status)
    return redirect("/settings/retention", notice="settings-saved")
