"""Organisation settings (name, deletion), API keys, and the user's own account."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from cybergine.accounts.auth import Caller, authorize, role_choices
from cybergine.accounts.models import Role
from cybergine.accounts.permissions import Permission
from cybergine.accounts.service import api_keys, organisations, users
from cybergine.dashboard.forms import fields
from cybergine.dashboard.templating import redirect, render_page
from cybergine.errors import CybergineError, InvalidInput
from cybergine.settings import Settings
from cybergine.web.deps import SettingsDep

router = APIRouter(include_in_schema=False)


async def _settings_page(
    request: Request,
    caller: Caller,
    settings: Settings,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return await render_page(
        request,
        "settings.html",
        caller,
        {"grace_days": settings.organisation_deletion_grace_days, "error": error},
        status_code=status_code,
    )


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(
    request: Request,
    caller: Annotated[Caller, authorize(Permission.ORGANISATION_READ)],
    settings: SettingsDep,
) -> HTMLResponse:
    return await _settings_page(request, caller, settings)


@router.post("/settings")
async def save_settings(
    request: Request,
    caller: Annotated[Caller, authorize(Permission.ORGANISATION_UPDATE)],
    settings: SettingsDep,
) -> Response:
    form = await fields(request, "name")
    try:
        async with caller.session.begin_nested():
            await organisations.rename_organisation(
                caller.scope, caller.principal, name=form["name"]
            )
    except CybergineError as exc:
        return await _settings_page(
            request, caller, settings, error=exc.detail, status_code=exc.status
        )
    return redirect("/settings", notice="settings-saved")


@router.post("/settings/delete")
async def delete_organisation(
    request: Request,
    caller: Annotated[Caller, authorize(Permission.ORGANISATION_DELETE)],
    settings: SettingsDep,
) -> Response:
    form = await fields(request, "confirm_name")
    organisation = await organisations.get_organisation(
        caller.session, caller.principal.organisation_id
    )
    if form["confirm_name"].strip() != organisation.name:
        return await _settings_page(
            request,
            caller,
            settings,
            error="The name you typed does not match; nothing was deleted.",
            status_code=422,
        )
    await organisations.schedule_deletion(
        caller.session,
        caller.principal.organisation_id,
        grace=timedelta(days=settings.organisation_deletion_grace_days),
        actor=caller.principal.actor,
    )
    return redirect("/settings", notice="deletion-scheduled")


@router.post("/settings/delete/cancel")
async def cancel_deletion(
    caller: Annotated[Caller, authorize(Permission.ORGANISATION_DELETE)],
) -> Response:
    await organisations.cancel_deletion(
        caller.session, caller.principal.organisation_id, actor=caller.principal.actor
    )
    return redirect("/settings", notice="deletion-cancelled")


async def _keys_page(
    request: Request,
    caller: Caller,
    *,
    created: api_keys.CreatedKey | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return await render_page(
        request,
        "api_keys.html",
        caller,
        {
            "keys": await api_keys.list_api_keys(caller.scope),
            "created": created,
            "role_choices": role_choices(caller.principal.role),
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/settings/api-keys", response_class=HTMLResponse)
async def keys_page(
    request: Request, caller: Annotated[Caller, authorize(Permission.API_KEYS_MANAGE)]
) -> HTMLResponse:
    return await _keys_page(request, caller)


@router.post("/settings/api-keys", response_class=HTMLResponse)
async def create_key(
    request: Request, caller: Annotated[Caller, authorize(Permission.API_KEYS_MANAGE)]
) -> HTMLResponse:
    form = await fields(request, "name", "role")
    try:
        async with caller.session.begin_nested():
            try:
                role = Role(form["role"])
            except ValueError as exc:
                raise InvalidInput("Choose one of the roles offered.") from exc
            created = await api_keys.create_api_key(
                caller.scope, caller.principal, name=form["name"], role=role
            )
    except CybergineError as exc:
        return await _keys_page(request, caller, error=exc.detail, status_code=exc.status)
    # Rendered, not redirected: the key is shown once, on this response only.
    response = await _keys_page(request, caller, created=created)
    response.headers["cache-control"] = "no-store"
    return response


@router.post("/settings/api-keys/{api_key_id}/revoke")
async def revoke_key(
    api_key_id: uuid.UUID, caller: Annotated[Caller, authorize(Permission.API_KEYS_MANAGE)]
) -> Response:
    await api_keys.revoke_api_key(caller.scope, caller.principal, api_key_id)
    return redirect("/settings/api-keys", notice="key-revoked")


@router.get("/account", response_class=HTMLResponse)
async def account_page(
    request: Request, caller: Annotated[Caller, authorize(Permission.ORGANISATION_READ)]
) -> HTMLResponse:
    return await render_page(request, "account.html", caller)


@router.post("/account/password")
async def change_password(
    request: Request, caller: Annotated[Caller, authorize(Permission.ORGANISATION_READ)]
) -> Response:
    assert caller.signed_in is not None, "a password is changed from a browser session"
    form = await fields(request, "current_password", "new_password")
    try:
        async with caller.session.begin_nested():
            await users.change_password(
                caller.session,
                user=caller.signed_in.user,
                current_password=form["current_password"],
                new_password=form["new_password"],
                keep_session_id=caller.signed_in.user_session.id,
            )
    except CybergineError as exc:
        return await render_page(
            request, "account.html", caller, {"error": exc.detail}, status_code=exc.status
        )
    return redirect("/account", notice="password-changed")
