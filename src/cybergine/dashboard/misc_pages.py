"""The overview, the audit log, switching organisation, and the developer outbox."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from cybergine.accounts.auth import Caller, authorize, public
from cybergine.accounts.permissions import Permission
from cybergine.accounts.service import sessions
from cybergine.dashboard.forms import fields
from cybergine.dashboard.onboarding_pages import overview_page
from cybergine.dashboard.templating import redirect, render, render_page
from cybergine.db.base import BIGINT_MAX
from cybergine.errors import NotFound
from cybergine.mail.service import list_outbox
from cybergine.privacy import audit
from cybergine.web.deps import SessionDep
from cybergine.web.proxies import came_through_proxy

router = APIRouter(include_in_schema=False)
AUDIT_PAGE = 50


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request, caller: Annotated[Caller, authorize(Permission.ORGANISATION_READ)]
) -> HTMLResponse:
    # The getting-started checklist with its inline steps (onboarding_pages).
    return await overview_page(request, caller)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    caller: Annotated[Caller, authorize(Permission.AUDIT_READ)],
    before_seq: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
) -> HTMLResponse:
    events = await audit.list_events(
        caller.session,
        organisation_id=caller.principal.organisation_id,
        limit=AUDIT_PAGE,
        before_seq=before_seq,
    )
    next_before = events[-1].seq if len(events) == AUDIT_PAGE else None
    return await render_page(
        request, "audit.html", caller, {"events": events, "next_before": next_before}
    )


@router.post("/organisations/switch")
async def switch_organisation(
    request: Request, caller: Annotated[Caller, authorize(Permission.ORGANISATION_READ)]
) -> Response:
    assert caller.signed_in is not None
    form = await fields(request, "organisation_id")
    try:
        target = uuid.UUID(form["organisation_id"])
    except ValueError as exc:
        raise NotFound("No such organisation.") from exc
    await sessions.switch_organisation(caller.session, caller.signed_in.user_session, target)
    return redirect("/", notice="switched")


def local_developer(request: Request) -> bool:
    """A browser on this machine, talking to an embedded (local) platform directly. Not
    through a proxy, even one on this machine: behind it, every visitor would look local."""
    if not request.app.state.settings.embedded or request.client is None:
        return False
    if came_through_proxy(request):
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


def outbox_allowed(request: Request) -> bool:
    """The outbox shows e-mails with sign-in and reset links: only to a local developer,
    and only while e-mail goes nowhere else (no CYBERGINE_SMTP_URL)."""
    return request.app.state.settings.smtp_url is None and local_developer(request)


@router.get("/dev/outbox", response_class=HTMLResponse)
async def outbox(
    request: Request,
    _: Annotated[None, public("developer outbox: embedded, no SMTP, local browser, no proxy")],
    session: SessionDep,
) -> HTMLResponse:
    if not outbox_allowed(request):
        raise NotFound("Not found.")
    return render(request, "outbox.html", {"emails": await list_outbox(session)})
