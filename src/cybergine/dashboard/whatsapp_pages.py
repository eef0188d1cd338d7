"""WhatsApp numbers in the dashboard: connect one (its credentials checked with Meta
before anything is saved, as ``POST /api/v1/channels/whatsapp`` does), and a number's
page: what to paste into Meta's dashboard, when its last webhook arrived, its last
error, which assistant answers on it, and disconnecting it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from cybergine.accounts.auth import Authorized, Caller, authorize, authorize_outside_transaction
from cybergine.accounts.permissions import Permission
from cybergine.assistants import service as assistants
from cybergine.channels.whatsapp import service as whatsapp
from cybergine.channels.whatsapp.api import forget_number
from cybergine.channels.whatsapp.schemas import WEBHOOK_PATH
from cybergine.channels.whatsapp.service import NumberChanges
from cybergine.dashboard.forms import fields
from cybergine.dashboard.templating import redirect, render_page
from cybergine.errors import CybergineError, InvalidInput
from cybergine.web.deps import SettingsDep

router = APIRouter(include_in_schema=False)

Reader = Annotated[Caller, authorize(Permission.CONFIGURATION_READ)]
Editor = Annotated[Caller, authorize(Permission.CONFIGURATION_MANAGE)]
EditorOutsideTransaction = Annotated[
    Authorized, authorize_outside_transaction(Permission.CONFIGURATION_MANAGE)
]

CONNECT_FIELDS = (
    "assistant_id",
    "phone_number_id",
    "waba_id",
    "display_phone_number",
    "access_token",
    "app_secret",
)
# Never sent back into a page: a refused form asks for them again.
SECRET_FIELDS = ("access_token", "app_secret")


def _assistant_id(value: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput("Choose one of the assistants offered.", field="assistant_id") from None


async def _numbers_page(
    request: Request,
    caller: Caller,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    listed = await assistants.list_assistants(caller.scope)
    return await render_page(
        request,
        "whatsapp.html",
        caller,
        {
            "numbers": await whatsapp.list_numbers(caller.scope),
            "assistants": listed,
            "assistant_names": {a.id: a.name for a in listed},
            "values": {name: v for name, v in (values or {}).items() if name not in SECRET_FIELDS},
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/channels/whatsapp", response_class=HTMLResponse)
async def numbers_page(request: Request, caller: Reader) -> HTMLResponse:
    return await _numbers_page(request, caller)


@router.post("/channels/whatsapp", response_class=HTMLResponse)
async def connect_number(
    request: Request, editor: EditorOutsideTransaction, settings: SettingsDep
) -> Response:
    form = await fields(request, *CONNECT_FIELDS)
    try:
        changes = NumberChanges(
            assistant_id=_assistant_id(form["assistant_id"]),
            phone_number_id=form["phone_number_id"],
            waba_id=form["waba_id"],
            display_phone_number=form["display_phone_number"],
            access_token=form["access_token"],
            app_secret=form["app_secret"] or None,
            verify_token=whatsapp.issued_verify_token(form["phone_number_id"].strip()),
            fields_set={*CONNECT_FIELDS, "verify_token"},
        )
        # What the database can say first; then Meta, with no transaction open.
        async with editor.transaction() as caller:
            await whatsapp.check_new_number(caller.scope, changes)
        await whatsapp.check_credentials(
            settings.whatsapp_graph_url, form["phone_number_id"], form["access_token"]
        )
        async with editor.transaction() as caller:
            number = await whatsapp.create_number(caller.scope, caller.principal, changes)
            number_id, phone_number_id = number.id, number.phone_number_id
    except CybergineError as exc:
        field = exc.extra.get("field") or "access_token"
        async with editor.transaction() as caller:
            return await _numbers_page(
                request,
                caller,
                values=form,
                errors={field if field in CONNECT_FIELDS else "access_token": exc.detail},
                status_code=exc.status,
            )
    forget_number(request, phone_number_id)
    return redirect(f"/channels/whatsapp/{number_id}", notice="number-connected")


async def _number_page(
    request: Request,
    caller: Caller,
    number_id: uuid.UUID,
    settings: Any,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    number = await whatsapp.get_number(caller.scope, number_id)
    default = settings.whatsapp_verify_token
    return await render_page(
        request,
        "whatsapp_number.html",
        caller,
        {
            "number": number,
            "assistants": await assistants.list_assistants(caller.scope),
            "webhook_url": settings.public_url + WEBHOOK_PATH,
            "verify_token": whatsapp.shown_verify_token(
                number, default.get_secret_value() if default else None
            ),
            "errors": errors or {},
            "values": values or {},
        },
        status_code=status_code,
    )


@router.get("/channels/whatsapp/{number_id}", response_class=HTMLResponse)
async def number_page(
    request: Request, number_id: uuid.UUID, caller: Reader, settings: SettingsDep
) -> HTMLResponse:
    return await _number_page(request, caller, number_id, settings)


@router.post("/channels/whatsapp/{number_id}", response_class=HTMLResponse)
async def edit_number(
    request: Request, number_id: uuid.UUID, caller: Editor, settings: SettingsDep
) -> Response:
    form = await fields(request, "display_phone_number", "assistant_id")
    try:
        async with caller.session.begin_nested():
            changes = NumberChanges(
                display_phone_number=form["display_phone_number"],
                assistant_id=_assistant_id(form["assistant_id"]),
                fields_set={"display_phone_number", "assistant_id"},
            )
            number = await whatsapp.update_number(
                caller.scope, caller.principal, number_id, changes
            )
            phone_number_id = number.phone_number_id
    except CybergineError as exc:
        field = exc.extra.get("field") or "display_phone_number"
        return await _number_page(
            request,
            caller,
            number_id,
            settings,
            errors={field: exc.detail},
            values=form,
            status_code=exc.status,
        )
    forget_number(request, phone_number_id)
    return redirect(f"/channels/whatsapp/{number_id}", notice="number-saved")


@router.post("/channels/whatsapp/{number_id}/disconnect")
async def disconnect_number(request: Request, number_id: uuid.UUID, caller: Editor) -> Response:
    phone_number_id = await whatsapp.delete_number(caller.scope, caller.principal, number_id)
    forget_number(request, phone_number_id)
    return redirect("/channels/whatsapp", notice="number-disconnected")
