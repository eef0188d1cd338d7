"""/api/v1 routes of the accounts domain: the organisation, its team, its API keys, its
audit trail, and the signed-in person's own account. Thin: parse, authorise, call one
service function, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse

from cybergine.accounts.auth import (
    SESSION_COOKIE,
    AccountHolder,
    Caller,
    authorize,
    authorize_account_holder,
)
from cybergine.accounts.models import Organisation
from cybergine.accounts.permissions import Permission
from cybergine.accounts.schemas import (
    AccountDeletion,
    AccountOut,
    AccountUpdate,
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    AuditEventOut,
    InvitationIn,
    InvitationOut,
    MemberOut,
    MemberUpdate,
    OrganisationOut,
    OrganisationUpdate,
)
from cybergine.accounts.service import api_keys, organisations, own_account, team, user_erasure
from cybergine.db.base import BIGINT_MAX
from cybergine.errors import Conflict, TooManyRequests
from cybergine.privacy import audit
from cybergine.web.deps import DatabaseDep, SettingsDep
from cybergine.web.downloads import content_disposition
from cybergine.web.openapi import may_answer

router = APIRouter(prefix="/api/v1", tags=["organisation"])


def _member_out(member: team.Member) -> MemberOut:
    return MemberOut(
        id=member.membership.id,
        user_id=member.user.id,
        name=member.user.name,
        email=member.user.email,
        role=member.membership.role,
        joined_at=member.membership.created_at,
    )


@router.get("/organisation", response_model=OrganisationOut)
async def get_organisation(
    caller: Annotated[Caller, authorize(Permission.ORGANISATION_READ)],
) -> Organisation:
    return await organisations.get_organisation(caller.session, caller.principal.organisation_id)


@router.patch("/organisation", response_model=OrganisationOut)
async def update_organisation(
    body: OrganisationUpdate,
    caller: Annotated[Caller, authorize(Permission.ORGANISATION_UPDATE)],
) -> Organisation:
    return await organisations.rename_organisation(caller.scope, caller.principal, name=body.name)


@router.get("/members", response_model=list[MemberOut])
async def list_members(
    caller: Annotated[Caller, authorize(Permission.TEAM_READ)],
) -> list[MemberOut]:
    return [_member_out(m) for m in await team.list_members(caller.scope)]


@router.patch("/members/{membership_id}", response_model=MemberOut, responses=may_answer(Conflict))
async def change_member_role(
    membership_id: uuid.UUID,
    body: MemberUpdate,
    caller: Annotated[Caller, authorize(Permission.TEAM_MANAGE)],
) -> MemberOut:
    await team.change_role(caller.scope, caller.principal, membership_id, body.role)
    members = await team.list_members(caller.scope)
    return _member_out(next(m for m in members if m.membership.id == membership_id))


@router.delete(
    "/members/{membership_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=may_answer(Conflict),
)
async def remove_member(
    membership_id: uuid.UUID,
    caller: Annotated[Caller, authorize(Permission.TEAM_MANAGE)],
) -> Response:
    await team.remove_member(caller.scope, caller.principal, membership_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/invitations", response_model=list[InvitationOut])
async def list_invitations(
    caller: Annotated[Caller, authorize(Permission.TEAM_MANAGE)],
) -> list[InvitationOut]:
    return [InvitationOut.model_validate(i) for i in await team.list_invitations(caller.scope)]


@router.post(
    "/invitations",
    response_model=InvitationOut,
    status_code=status.HTTP_201_CREATED,
    responses=may_answer(Conflict),
)
async def create_invitation(
    body: InvitationIn,
    caller: Annotated[Caller, authorize(Permission.TEAM_MANAGE)],
    settings: SettingsDep,
) -> InvitationOut:
    invitation = await team.invite(
        caller.scope,
        caller.principal,
        email=body.email,
        role=body.role,
        public_url=settings.public_url,
    )
    return InvitationOut.model_validate(invitation)


@router.delete("/invitations/{invitation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_invitation(
    invitation_id: uuid.UUID,
    caller: Annotated[Caller, authorize(Permission.TEAM_MANAGE)],
) -> Response:
    await team.revoke_invitation(caller.scope, caller.principal, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api-keys", response_model=list[ApiKeyOut])
async def list_api_keys(
    caller: Annotated[Caller, authorize(Permission.API_KEYS_MANAGE)],
) -> list[ApiKeyOut]:
    return [ApiKeyOut.model_validate(k) for k in await api_keys.list_api_keys(caller.scope)]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyIn,
    caller: Annotated[Caller, authorize(Permission.API_KEYS_MANAGE)],
) -> ApiKeyCreated:
    created = await api_keys.create_api_key(
        caller.scope, caller.principal, name=body.name, role=body.role
    )
    return ApiKeyCreated(
        **ApiKeyOut.model_validate(created.api_key).model_dump(), key=created.secret
    )


@router.delete("/api-keys/{api_key_id}", response_model=ApiKeyOut)
async def revoke_api_key(
    api_key_id: uuid.UUID,
    caller: Annotated[Caller, authorize(Permission.API_KEYS_MANAGE)],
) -> ApiKeyOut:
    return ApiKeyOut.model_validate(
        await api_keys.revoke_api_key(caller.scope, caller.principal, api_key_id)
    )


@router.get("/audit-events", response_model=list[AuditEventOut])
async def list_audit_events(
    caller: Annotated[Caller, authorize(Permission.AUDIT_READ)],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_seq: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
) -> list[AuditEventOut]:
    events = await audit.list_events(
        caller.session,
        organisation_id=caller.principal.organisation_id,
        limit=limit,
        before_seq=before_seq,
    )
    return [AuditEventOut.model_validate(e) for e in events]


Holder = Annotated[AccountHolder, authorize_account_holder()]


async def _account_out(holder: AccountHolder) -> AccountOut:
    user = holder.user
    return AccountOut(
        id=user.id,
        name=user.name,
        email=user.email,
        created_at=user.created_at,
        pending_email=await own_account.pending_email(holder.session, user),
    )


@router.get("/account", response_model=AccountOut, tags=["account"])
async def get_account(holder: Holder) -> AccountOut:
    return await _account_out(holder)


@router.get(
    "/account/export", tags=["account"], summary="Everything held about you (JSON, audited)"
)
async def export_account(holder: Holder) -> JSONResponse:
    exported = await own_account.export_account(holder.session, holder.user)
    return JSONResponse(
        exported,
        headers={
            "Content-Disposition": content_disposition(
                "attachment", f"account-{holder.user.id}.json"
            ),
            "Cache-Control": "no-store",
        },
    )


@router.patch(
    "/account",
    response_model=AccountOut,
    tags=["account"],
    responses=may_answer(Conflict, TooManyRequests),
)
async def update_account(
    body: AccountUpdate, holder: Holder, database: DatabaseDep, settings: SettingsDep
) -> AccountOut:
    if body.name is not None:
        await own_account.rename(holder.session, holder.user, body.name)
    if body.email is not None:
        await own_account.request_email_change(
            holder.session, database, holder.user, email=body.email, public_url=settings.public_url
        )
    return await _account_out(holder)


@router.delete(
    "/account",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["account"],
    summary="Delete your account and erase what is held about you",
    responses=may_answer(Conflict, TooManyRequests),
)
async def delete_account(body: AccountDeletion, holder: Holder, database: DatabaseDep) -> Response:
    await user_erasure.delete_account(holder.session, database, holder.user, password=body.password)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
