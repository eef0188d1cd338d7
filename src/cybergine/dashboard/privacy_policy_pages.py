"""The notice of a new privacy policy version, shown on every page until the signed-in
person acknowledges it (``base.html``; ``privacy_policy.service.pending_notice``), and
the list of versions announced."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from cybergine.accounts.auth import AccountHolder, authorize_account_holder
from cybergine.dashboard.forms import fields, safe_next
from cybergine.dashboard.templating import redirect, render, render_page
from cybergine.errors import NotFound
from cybergine.privacy_policy import service

router = APIRouter(include_in_schema=False)

Holder = Annotated[AccountHolder, authorize_account_holder()]


@router.post("/privacy-policy/acknowledge")
async def acknowledge(request: Request, holder: Holder) -> Response:
    form = await fields(request, "version_id", "next")
    try:
        version_id = uuid.UUID(form["version_id"])
    except ValueError:
        raise NotFound("No such version of the privacy policy.") from None
    await service.acknowledge(holder.session, holder.user, version_id)
    return redirect(safe_next(form["next"]))


@router.get("/privacy-policy", response_class=HTMLResponse)
async def versions_page(request: Request, holder: Holder) -> HTMLResponse:
    context = {
        "versions": await service.list_versions(holder.session),
        "today": datetime.now(UTC).date(),
    }
    if holder.caller is not None:
        return await render_page(request, "privacy_policy.html", holder.caller, context)
    return render(request, "privacy_policy.html", context, signed_in=holder.signed_in)
