"""The Overview as the place a new shop sets up from: each step of the getting-started
checklist that is not done carries its action inline, for people who may change the
setup (CONFIGURATION_MANAGE); others see where each step is done.

- create an assistant: its name only (``POST /getting-started/assistant``), every other
  setting the service's default, changed later on the assistant's page;
- add knowledge: the knowledge page's upload form, sent as soon as files are chosen
  (``/knowledge/upload``); while a document is being read the checklist refreshes itself
  (``GET /getting-started/checklist``) until it is ready;
- try it: the assistant's Try-it panel (its own routes);
- put it on a site: the website's address (``POST /getting-started/{assistant_id}/website``),
  then the snippet to copy.

What is done is decided by ``onboarding.service.checklist`` alone.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.assistants import service as assistants
from cybergine.assistants.changes import AssistantChanges
from cybergine.conversations.activity import today_numbers
from cybergine.dashboard.channel_pages import snippet
from cybergine.dashboard.forms import fields
from cybergine.dashboard.knowledge_pages import ACCEPTED_TYPES
from cybergine.dashboard.templating import redirect, render, render_page
from cybergine.errors import CybergineError, InvalidInput
from cybergine.onboarding.service import Checklist, checklist
from cybergine.shopify import embedded as shopify_embedded

router = APIRouter(include_in_schema=False)

Member = Annotated[Caller, authorize(Permission.ORGANISATION_READ)]
Editor = Annotated[Caller, authorize(Permission.CONFIGURATION_MANAGE)]


async def _checklist_context(
    request: Request,
    caller: Caller,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What the checklist shows: the steps, and for someone who may set things up, what
    the inline actions need (the first assistant, its snippet once it lists a site)."""
    getting_started: Checklist = await checklist(caller.scope)
    can_set_up = caller.principal.can(Permission.CONFIGURATION_MANAGE)
    assistant = (
        await assistants.get_assistant(caller.scope, getting_started.first_assistant_id)
        if can_set_up and getting_started.first_assistant_id is not None
        else None
    )
    return {
        "checklist": getting_started,
        "can_set_up": can_set_up,
        "assistant": assistant,
        "snippet": snippet(request, assistant)
        if assistant is not None and assistant.allowed_origins
        else None,
        # The Try-it panel's offline note points at the assistant's model settings.
        "try_model_url": f"/assistants/{assistant.id}#model" if assistant else "#model",
        "accepted_types": ACCEPTED_TYPES,
        "setup_errors": errors or {},
        "setup_values": values or {},
    }


async def overview_page(
    request: Request,
    caller: Caller,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The Overview (``/``), with ``errors`` next to the inline fields they concern."""
    numbers = (
        await today_numbers(caller.scope)
        if caller.principal.can(Permission.CONVERSATIONS_READ)
        else None
    )
    context = await _checklist_context(request, caller, errors=errors, values=values)
    shop = await shopify_embedded.dashboard_panel(
        caller.session, request.app.state.settings, caller.principal.organisation_id
    )
    return await render_page(
        request,
        "home.html",
        caller,
        {**context, "today": numbers, "shopify": shop},
        status_code=status_code,
    )


@router.get("/getting-started/checklist", response_class=HTMLResponse)
async def checklist_part(request: Request, caller: Member) -> HTMLResponse:
    """The checklist alone: the Overview asks for it after an upload, and every two
    seconds while a document is being read, so the step ticks itself."""
    return render(
        request, "home_checklist.html", await _checklist_context(request, caller), caller=caller
    )


@router.post("/getting-started/assistant")
async def create_assistant(request: Request, caller: Editor) -> Response:
    """An assistant with a name and every other setting as the service starts it."""
    form = await fields(request, "name")
    try:
        async with caller.session.begin_nested():
            await assistants.create_assistant(
                caller.scope,
                caller.principal,
                AssistantChanges(name=form["name"], fields_set={"name"}),
            )
    except CybergineError as exc:
        return await overview_page(
            request,
            caller,
            errors={"assistant_name": exc.detail},
            values={"assistant_name": form["name"]},
            status_code=422,
        )
    return redirect("/", notice="assistant-created")


@router.post("/getting-started/{assistant_id}/website")
async def add_website(request: Request, assistant_id: uuid.UUID, caller: Editor) -> Response:
    """One more site the assistant's chat bubble may appear on."""
    form = await fields(request, "add")
    assistant = await assistants.get_assistant(caller.scope, assistant_id)
    address = form["add"].strip()
    try:
        if not address:
            raise InvalidInput("Write your website's address, like https://shop.example.")
        async with caller.session.begin_nested():
            await assistants.update_assistant(
                caller.scope,
                caller.principal,
                assistant_id,
                AssistantChanges(
                    allowed_origins=[*assistant.allowed_origins, address],
                    fields_set={"allowed_origins"},
                ),
            )
    except CybergineError as exc:
        return await overview_page(
            request,
            caller,
            errors={"website": exc.detail},
            values={"website": form["add"]},
            status_code=422,
        )
    return redirect("/", notice="origin-added")
