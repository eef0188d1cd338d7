"""Assistants in the dashboard: the list, a new one, and one assistant's every setting
(the widget's are on the Channels page). The form is read by ``assistant_form`` and saved
through the same service functions as the API, so both keep the same rules; the service
audits each change. The assistant's page leaves room for the "Try it" panel
(``assistant_try.html``), which has routes of its own."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.assistants import service
from cybergine.assistants.models import Assistant, LlmProvider
from cybergine.dashboard.assistant_form import (
    DAY_NAMES,
    PROVIDER_LABELS,
    TONE_LABELS,
    AssistantForm,
    collection_choices,
    field_errors,
    timezones,
)
from cybergine.dashboard.templating import TEMPLATES_DIR, redirect, render_page
from cybergine.errors import Conflict, InvalidInput
from cybergine.knowledge.service import list_collections
from cybergine.llm.endpoints import ChatEndpoints
from cybergine.settings import Settings
from cybergine.web.deps import SettingsDep

router = APIRouter(include_in_schema=False)

Reader = Annotated[Caller, authorize(Permission.CONFIGURATION_READ)]
Editor = Annotated[Caller, authorize(Permission.CONFIGURATION_MANAGE)]

# The "Try it" panel is a template of its own; the page makes room for it when it exists.
TRY_PANEL = "assistant_try.html"


@router.get("/assistants", response_class=HTMLResponse)
async def assistants_page(request: Request, caller: Reader) -> HTMLResponse:
    return await render_page(
        request,
        "assistants.html",
        caller,
        {
            "assistants": await service.list_assistants(caller.scope),
            "whatsapp_numbers": await service.whatsapp_numbers_per_assistant(caller.scope),
            "provider": LlmProvider,
        },
    )


async def _form_page(
    request: Request,
    caller: Caller,
    settings: Settings,
    form: AssistantForm,
    *,
    assistant: Assistant | None,
    error: InvalidInput | Conflict | None = None,
) -> HTMLResponse:
    """The form for a new assistant (``assistant`` None) or a saved one, with ``error``
    shown next to the field it names."""
    errors, page_error = field_errors(error) if error else ({}, None)
    collections = [c.name for c in await list_collections(caller.scope)]
    return await render_page(
        request,
        "assistant_form.html",
        caller,
        {
            "assistant": assistant,
            "form": form,
            "errors": errors,
            "error": page_error,
            "can_edit": caller.principal.can(Permission.CONFIGURATION_MANAGE),
            "collections": collection_choices(collections, form.knowledge_collections),
            "has_collections": bool(collections),
            "has_key": assistant is not None and assistant.llm_api_key is not None,
            "key_was_typed": bool(error and form.new_api_key.strip()),
            "server_has_model": settings.openai_api_key is not None,
            "tones": TONE_LABELS,
            "providers": PROVIDER_LABELS,
            "days": DAY_NAMES,
            "timezones": timezones(),
            "try_panel": (TEMPLATES_DIR / TRY_PANEL).exists() and assistant is not None,
        },
        status_code=error.status if error else 200,
    )


@router.get("/assistants/new", response_class=HTMLResponse)
async def new_assistant_page(
    request: Request, caller: Editor, settings: SettingsDep
) -> HTMLResponse:
    form = AssistantForm.of(service.new_assistant())
    return await _form_page(request, caller, settings, form, assistant=None)


@router.post("/assistants")
async def create_assistant(request: Request, caller: Editor, settings: SettingsDep) -> Response:
    form = await AssistantForm.read(request)
    try:
        async with caller.session.begin_nested():
            assistant = await service.create_assistant(
                caller.scope,
                caller.principal,
                form.changes(),
                endpoints=ChatEndpoints.of(settings),
            )
    except (InvalidInput, Conflict) as exc:
        return await _form_page(request, caller, settings, form, assistant=None, error=exc)
    return redirect(f"/assistants/{assistant.id}", notice="assistant-created")


@router.get("/assistants/{assistant_id}", response_class=HTMLResponse)
async def assistant_page(
    assistant_id: uuid.UUID, request: Request, caller: Reader, settings: SettingsDep
) -> HTMLResponse:
    assistant = await service.get_assistant(caller.scope, assistant_id)
    form = AssistantForm.of(assistant)
    return await _form_page(request, caller, settings, form, assistant=assistant)


@router.post("/assistants/{assistant_id}")
async def save_assistant(
    assistant_id: uuid.UUID, request: Request, caller: Editor, settings: SettingsDep
) -> Response:
    # Found first: another organisation's id is a 404 whatever the form holds.
    assistant = await service.get_assistant(caller.scope, assistant_id)
    form = await AssistantForm.read(request)
    try:
        async with caller.session.begin_nested():
            await service.update_assistant(
                caller.scope,
                caller.principal,
                assistant_id,
                form.changes(),
                endpoints=ChatEndpoints.of(settings),
            )
    except (InvalidInput, Conflict) as exc:
        # The savepoint is gone, and with it any value the service had set: show what is
        # saved (the key's state) next to what was typed.
        await caller.session.refresh(assistant)
        return await _form_page(request, caller, settings, form, assistant=assistant, error=exc)
    return redirect(f"/assistants/{assistant_id}", notice="assistant-saved")


@router.post("/assistants/{assistant_id}/delete")
async def delete_assistant(assistant_id: uuid.UUID, caller: Editor) -> Response:
    await service.delete_assistant(caller.scope, caller.principal, assistant_id)
    return redirect("/assistants", notice="assistant-deleted")
