"""Organisation settings (name, deletion), API keys, and the signed-in person's own
account: name, e-mail address (confirmed by a link sent to the new one), password, a copy
of their data, and deleting the account."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from cybergine.accounts.auth import (
    SESSION_COOKIE,
    AccountHolder,
    Caller,
    authorize,
    authorize_account_holder,
    role_choices,
)
from cybergine.accounts.models import Role
from cybergine.accounts.permissions import Permission
from cybergine.accounts.resumed_work import resume_background_work
from cybergine.accounts.service import api_keys, organisations, own_account, user_erasure, users
from cybergine.analytics import api_usage_report
from cybergine.dashboard.forms import fields
from cybergine.dashboard.templating import redirect, render, render_page
from cybergine.errors import CybergineError, InvalidInput
from cybergine.privacy.organisation_export import api as export_api
from cybergine.privacy.organisation_export import service as organisation_export
from cybergine.settings import Settings
from cybergine.web.deps import DatabaseDep, SettingsDep

router = APIRouter(include_in_schema=False)


async def _settings_page(
    request: Request,
    caller: Caller,
    settings: Settings,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    exports = (
        await organisation_export.recent_exports(caller.scope)
        if caller.principal.can(Permission.ORGANISATION_EXPORT)
        else []
    )
    return await render_page(
        request,
        "settings.html",
        caller,
        {
            "grace_days": settings.organisation_deletion_grace_days,
            "error": error,
            "exports": exports,
            "export_kept_days": organisation_export.KEPT_FOR.days,
        },
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
    await resume_background_work(caller.session, caller.principal.organisation_id)
    return redirect("/settings", notice="deletion-cancelled")


@router.post("/settings/export")
async def request_export(
    request: Request,
    caller: Annotated[Caller, authorize(Permission.ORGANISATION_EXPORT)],
    settings: SettingsDep,
) -> Response:
    try:
        async with caller.session.begin_nested():
            await organisation_export.request_export(caller.scope, caller.principal)
    except CybergineError as exc:
        return await _settings_page(
            request, caller, settings, error=exc.detail, status_code=exc.status
        )
    return redirect("/settings", notice="export-requested")


@router.post("/settings/export/{export_id}/download")
async def download_export(
    export_id: uuid.UUID,
    request: Request,
    caller: Annotated[Caller, authorize(Permission.ORGANISATION_EXPORT)],
    settings: SettingsDep,
) -> Response:
    """A fresh single-use link, followed at once: the browser downloads the file."""
    try:
        async with caller.session.begin_nested():
            link = await organisation_export.issue_link(caller.scope, caller.principal, export_id)
    except CybergineError as exc:
        return await _settings_page(
            request, caller, settings, error=exc.detail, status_code=exc.status
        )
    return RedirectResponse(export_api.download_url(export_id, link.token), status_code=303)


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
            "api_usage": await api_usage_report.recent(caller.scope),
            "api_usage_days": api_usage_report.RECENT_DAYS,
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


# The person's own account, whatever organisations (or none) they are in.
Holder = Annotated[AccountHolder, authorize_account_holder()]
# What the deletion form asks to be typed, so that no stray click deletes an account.
DELETE_CONFIRMATION = "delete my account"


async def _render(
    request: Request,
    holder: AccountHolder,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """With the organisation's navigation when they have one; bare when they have none
    left (their account is theirs until it is erased)."""
    if holder.caller is not None:
        return await render_page(request, template, holder.caller, context, status_code=status_code)
    return render(request, template, context, signed_in=holder.signed_in, status_code=status_code)


async def _account_page(
    request: Request,
    holder: AccountHolder,
    extra: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    user = holder.user
    context = {
        "account_name": user.name,
        "pending_email": await own_account.pending_email(holder.session, user),
        "sole_owner_of": await user_erasure.sole_owner_organisations(holder.session, user.id),
        "delete_confirmation": DELETE_CONFIRMATION,
        **(extra or {}),
    }
    return await _render(request, holder, "account.html", context, status_code=status_code)


async def _failed(request: Request, holder: AccountHolder, exc: CybergineError) -> HTMLResponse:
    return await _account_page(request, holder, {"error": exc.detail}, status_code=exc.status)


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, holder: Holder) -> HTMLResponse:
    return await _account_page(request, holder)


@router.post("/account/profile")
async def save_profile(request: Request, holder: Holder) -> Response:
    form = await fields(request, "name")
    try:
        async with holder.session.begin_nested():
            await own_account.rename(holder.session, holder.user, form["name"])
    except CybergineError as exc:
        return await _failed(request, holder, exc)
    return redirect("/account", notice="profile-saved")


@router.post("/account/email")
async def change_email(
    request: Request, holder: Holder, database: DatabaseDep, settings: SettingsDep
) -> Response:
    form = await fields(request, "email")
    try:
        async with holder.session.begin_nested():
            await own_account.request_email_change(
                holder.session,
                database,
                holder.user,
                email=form["email"],
                public_url=settings.public_url,
            )
    except CybergineError as exc:
        return await _failed(request, holder, exc)
    return redirect("/account", notice="email-change-sent")


@router.get("/account/email/{token}", response_class=HTMLResponse)
async def confirm_email_page(request: Request, token: str, holder: Holder) -> HTMLResponse:
    # A button, not the GET itself: mail scanners follow links.
    return await _render(request, holder, "account_email_confirm.html", {"token": token})


@router.post("/account/email/{token}")
async def confirm_email(request: Request, token: str, holder: Holder) -> Response:
    try:
        async with holder.session.begin_nested():
            await own_account.confirm_email_change(holder.session, holder.user, token=token)
    except CybergineError as exc:
        return await _failed(request, holder, exc)
    return redirect("/account", notice="email-changed")


@router.post("/account/password")
async def change_password(request: Request, holder: Holder) -> Response:
    form = await fields(request, "current_password", "new_password")
    try:
        async with holder.session.begin_nested():
            await users.change_password(
                holder.session,
                user=holder.user,
                current_password=form["current_password"],
                new_password=form["new_password"],
                keep_session_id=holder.signed_in.user_session.id,
            )
    except CybergineError as exc:
        return await _failed(request, holder, exc)
    return redirect("/account", notice="password-changed")


@router.post("/account/delete")
async def delete_account(request: Request, holder: Holder, database: DatabaseDep) -> Response:
    form = await fields(request, "password", "confirmation")
    if form["confirmation"].strip().lower() != DELETE_CONFIRMATION:
        return await _account_page(
            request,
            holder,
            {"error": f"Type “{DELETE_CONFIRMATION}” to confirm; nothing was deleted."},
            status_code=422,
        )
    try:
        async with holder.session.begin_nested():
            await user_erasure.delete_account(
                holder.session, database, holder.user, password=form["password"]
            )
    except CybergineError as exc:
        return await _failed(request, holder, exc)
    response = redirect("/login", notice="account-deleted")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
