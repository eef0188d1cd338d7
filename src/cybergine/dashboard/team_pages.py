"""The team page: members, roles, invitations."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from cybergine.accounts.auth import Caller, authorize, role_choices
from cybergine.accounts.models import Role
from cybergine.accounts.permissions import Permission
from cybergine.accounts.service import team
from cybergine.dashboard.forms import fields
from cybergine.dashboard.templating import redirect, render_page
from cybergine.errors import CybergineError, InvalidInput
from cybergine.web.deps import SettingsDep

router = APIRouter(include_in_schema=False)


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError as exc:
        raise InvalidInput("Choose one of the roles offered.") from exc


async def _team_page(
    request: Request, caller: Caller, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    can_manage = caller.principal.can(Permission.TEAM_MANAGE)
    return await render_page(
        request,
        "team.html",
        caller,
        {
            "members": await team.list_members(caller.scope),
            "invitations": await team.list_invitations(caller.scope) if can_manage else [],
            "can_manage": can_manage,
            "role_choices": role_choices(caller.principal.role),
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/team", response_class=HTMLResponse)
async def team_page(
    request: Request, caller: Annotated[Caller, authorize(Permission.TEAM_READ)]
) -> HTMLResponse:
    return await _team_page(request, caller)


@router.post("/team/invite")
async def invite(
    request: Request,
    caller: Annotated[Caller, authorize(Permission.TEAM_MANAGE)],
    settings: SettingsDep,
) -> Response:
    form = await fields(request, "email", "role")
    try:
        async with caller.session.begin_nested():
            await team.invite(
                caller.scope,
                caller.principal,
                email=form["email"],
                role=_role(form["role"]),
                public_url=settings.public_url,
            )
    except CybergineError as exc:
        return await _team_page(request, caller, error=exc.detail, status_code=exc.status)
    return redirect("/team", notice="invited")


@router.post("/team/members/{membership_id}/role")
async def change_role(
    request: Request,
    membership_id: uuid.UUID,
    caller: Annotated[Caller, authorize(Permission.TEAM_MANAGE)],
) -> Response:
    form = await fields(request, "role")
    try:
        async with caller.session.begin_nested():
            await team.change_role(
                caller.scope, caller.principal, membership_id, _role(form["role"])
            )
    except CybergineError as exc:
        if exc.status == 404:
            raise
        return await _team_page(request, caller, error=exc.detail, status_code=exc.status)
    return redirect("/team", notice="role-changed")


@router.post("/team/members/{membership_id}/remove")
async def remove_member(
    request: Request,
    membership_id: uuid.UUID,
    caller: Annotated[Caller, authorize(Permission.TEAM_MANAGE)],
) -> Response:
    try:
        async with caller.session.begin_nested():
            await team.remove_member(caller.scope, caller.principal, membership_id)
    except CybergineError as exc:
        if exc.status == 404:
            raise
        return await _team_page(request, caller, error=exc.detail, status_code=exc.status)
    return redirect("/team", notice="member-removed")


@router.post("/team/invitations/{invitation_id}/revoke")
async def revoke_invitation(
    request: Request,
    invitation_id: uuid.UUID,
    caller: Annotated[Caller, authorize(Permission.TEAM_MANAGE)],
) -> Response:
    await team.revoke_invitation(caller.scope, caller.principal, invitation_id)
    return redirect("/team", notice="invitation-revoked")
