"""Channels: the overview (each assistant's web widget, the WhatsApp numbers), and the web
widget of one assistant: the snippet a shop pastes into its site, the sites allowed to
show it, and how it looks, with a live preview of the real widget.

The preview is the real ``/widget.js`` in a frame served by ``/channels/widget/{id}/preview``
from our own origin (which every assistant's widget accepts), with the appearance not
saved yet passed in its ``data-preview`` attribute (``static/channels.js`` reloads the
frame as the form changes). Saves go through the assistants service, with the rules of
``PATCH /api/v1/assistants``.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.assistants import service as assistants
from cybergine.assistants.changes import AssistantChanges
from cybergine.assistants.models import Assistant
from cybergine.assistants.service import clean_widget
from cybergine.channels.webchat.service import DEFAULT_COLOUR
from cybergine.channels.whatsapp import service as whatsapp
from cybergine.dashboard.forms import fields
from cybergine.dashboard.templating import redirect, render, render_page
from cybergine.errors import CybergineError, InvalidInput
from cybergine.web.middleware import CONTENT_SECURITY_POLICY

router = APIRouter(include_in_schema=False)

Reader = Annotated[Caller, authorize(Permission.CONFIGURATION_READ)]
Editor = Annotated[Caller, authorize(Permission.CONFIGURATION_MANAGE)]

# The text fields of the appearance form; an empty one means "the default".
TEXT_FIELDS = ("title", "colour", "position", "avatar_url", "language", "privacy_notice_url")
APPEARANCE_FIELDS = (*TEXT_FIELDS, "ask_consent")
# The preview page is framed by the widget page, on our own origin only.
PREVIEW_POLICY = CONTENT_SECURITY_POLICY.replace("frame-ancestors 'none'", "frame-ancestors 'self'")


def own_origin(request: Request) -> str:
    """Where this server is reached, as the browser showing the page reaches it: the
    origin the widget's script is loaded from."""
    return str(request.base_url).rstrip("/")


def snippet(request: Request, assistant: Assistant) -> str:
    return (
        f'<script src="{own_origin(request)}/widget.js" '
        f'data-assistant="{assistant.widget_key}" async></script>'
    )


@router.get("/channels", response_class=HTMLResponse)
async def channels_page(request: Request, caller: Reader) -> HTMLResponse:
    listed = await assistants.list_assistants(caller.scope)
    numbers = await whatsapp.list_numbers(caller.scope)
    return await render_page(
        request,
        "channels.html",
        caller,
        {
            "assistants": listed,
            "numbers": numbers,
            "assistant_names": {a.id: a.name for a in listed},
        },
    )


# --- The web widget of one assistant ----------------------------------------------------


def _appearance_of(assistant: Assistant) -> dict[str, Any]:
    """The form's values: what is saved, with the defaults the widget applies."""
    widget = assistant.widget or {}
    return {
        "title": widget.get("title", ""),
        "colour": widget.get("colour", DEFAULT_COLOUR),
        "position": widget.get("position", "right"),
        "avatar_url": widget.get("avatar_url", ""),
        "language": widget.get("language", ""),
        "ask_consent": bool(widget.get("ask_consent", False)),
        "privacy_notice_url": widget.get("privacy_notice_url", ""),
    }


def _widget_from(form: dict[str, str]) -> dict[str, Any]:
    """The ``widget`` setting a submitted form asks for; an empty text means "the
    default" (the assistant's name, its first language), so it is left out."""
    widget: dict[str, Any] = {
        name: form[name].strip() for name in TEXT_FIELDS if form[name].strip()
    }
    widget["ask_consent"] = form["ask_consent"] == "on"
    return widget


def _concerned_field(widget: dict[str, Any]) -> str:
    """Which of the form's fields a refusal of the whole ``widget`` setting is about."""
    for name, value in widget.items():
        try:
            clean_widget({name: value})
        except InvalidInput:
            return name
    return "title"


async def _widget_page(
    request: Request,
    caller: Caller,
    assistant: Assistant,
    *,
    appearance: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    origin_value: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    appearance = appearance or _appearance_of(assistant)
    query = {name: appearance[name] for name in APPEARANCE_FIELDS if name != "ask_consent"}
    if appearance["ask_consent"]:
        query["ask_consent"] = "on"
    return await render_page(
        request,
        "channel_widget.html",
        caller,
        {
            "assistant": assistant,
            "preview_url": f"/channels/widget/{assistant.id}/preview?{urlencode(query)}",
            "snippet": snippet(request, assistant),
            "appearance": appearance,
            "errors": errors or {},
            "origin_value": origin_value,
            "own_origin": own_origin(request),
        },
        status_code=status_code,
    )


@router.get("/channels/widget/{assistant_id}", response_class=HTMLResponse)
async def widget_page(request: Request, assistant_id: uuid.UUID, caller: Reader) -> HTMLResponse:
    assistant = await assistants.get_assistant(caller.scope, assistant_id)
    return await _widget_page(request, caller, assistant)


@router.post("/channels/widget/{assistant_id}/origins", response_class=HTMLResponse)
async def change_origins(request: Request, assistant_id: uuid.UUID, caller: Editor) -> Response:
    form = await fields(request, "add", "remove")
    assistant = await assistants.get_assistant(caller.scope, assistant_id)
    origins = [o for o in assistant.allowed_origins if o != form["remove"]]
    if form["add"].strip():
        origins.append(form["add"])
    try:
        async with caller.session.begin_nested():
            await assistants.update_assistant(
                caller.scope,
                caller.principal,
                assistant_id,
                AssistantChanges(allowed_origins=origins, fields_set={"allowed_origins"}),
            )
    except CybergineError as exc:
        assistant = await assistants.get_assistant(caller.scope, assistant_id)
        return await _widget_page(
            request,
            caller,
            assistant,
            errors={"origin": exc.detail},
            origin_value=form["add"],
            status_code=exc.status,
        )
    notice = "origin-removed" if form["remove"] and not form["add"] else "origin-added"
    return redirect(f"/channels/widget/{assistant_id}", notice=notice)


@router.post("/channels/widget/{assistant_id}/appearance", response_class=HTMLResponse)
async def save_appearance(request: Request, assistant_id: uuid.UUID, caller: Editor) -> Response:
    form = await fields(request, *APPEARANCE_FIELDS)
    widget = _widget_from(form)
    try:
        async with caller.session.begin_nested():
            await assistants.update_assistant(
                caller.scope,
                caller.principal,
                assistant_id,
                AssistantChanges(widget=widget, fields_set={"widget"}),
            )
    except CybergineError as exc:
        assistant = await assistants.get_assistant(caller.scope, assistant_id)
        field = _concerned_field(widget) if exc.extra.get("field") == "widget" else "title"
        return await _widget_page(
            request,
            caller,
            assistant,
            appearance={**form, "ask_consent": widget["ask_consent"]},
            errors={field: exc.detail},
            status_code=exc.status,
        )
    return redirect(f"/channels/widget/{assistant_id}", notice="appearance-saved")


PreviewText = Annotated[str, Query(max_length=500)]


@router.get("/channels/widget/{assistant_id}/preview", response_class=HTMLResponse)
async def widget_preview(
    request: Request,
    assistant_id: uuid.UUID,
    caller: Reader,
    title: PreviewText = "",
    colour: PreviewText = "",
    position: PreviewText = "",
    avatar_url: PreviewText = "",
    language: PreviewText = "",
    ask_consent: PreviewText = "",
    privacy_notice_url: PreviewText = "",
) -> HTMLResponse:
    """A plain page with the real widget on it, looking as the query says (unsaved
    settings): each value the assistants service would refuse is left out, as the
    widget would then show its default."""
    assistant = await assistants.get_assistant(caller.scope, assistant_id)
    asked = _widget_from(
        {
            "title": title,
            "colour": colour,
            "position": position,
            "avatar_url": avatar_url,
            "language": language,
            "ask_consent": ask_consent,
            "privacy_notice_url": privacy_notice_url,
        }
    )
    kept: dict[str, Any] = {}
    for name, value in asked.items():
        try:
            kept.update(clean_widget({name: value}))
        except InvalidInput:
            continue
    # Every appearance setting, defaults included: the widget replaces the saved ones.
    preview = {
        "title": kept.get("title"),
        "colour": kept.get("colour", DEFAULT_COLOUR),
        "position": kept.get("position", "right"),
        "avatar_url": kept.get("avatar_url"),
        "language": kept.get("language") or (assistant.languages or ["en"])[0],
        "ask_consent": kept.get("ask_consent", False),
        "privacy_notice_url": kept.get("privacy_notice_url"),
    }
    response = render(
        request,
        "widget_preview.html",
        {"assistant": assistant, "preview": json.dumps(preview)},
        caller=caller,
    )
    response.headers["content-security-policy"] = PREVIEW_POLICY
    response.headers["x-frame-options"] = "SAMEORIGIN"
    response.headers["cache-control"] = "no-store"
    return response
