"""Members of an organisation, their roles, and invitations.

Rules: nobody grants a role above their own; only owners touch owners; an organisation
always keeps at least one owner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import Invitation, Membership, Organisation, Role, User
from cybergine.accounts.permissions import at_least
from cybergine.accounts.principal import Principal
from cybergine.accounts.service.users import membership, normalise_email
from cybergine.accounts.tokens import new_token, token_hash
from cybergine.db.tenancy import TenantScope
from cybergine.errors import Conflict, CybergineError, Forbidden, InvalidInput
from cybergine.mail.service import queue_email
from cybergine.privacy import audit

INVITATION_LIFETIME = timedelta(days=7)


class InvitationUnusable(CybergineError):
    status = 410
    type_slug = "invitation-unusable"
    title = "Invitation no longer valid"


@dataclass(frozen=True)
class Member:
    membership: Membership
    user: User


async def list_members(scope: TenantScope) -> list[Member]:
    result = await scope.session.execute(
        scope.select(Membership)
        .add_columns(User)
        .join(User, User.id == Membership.user_id)
        .order_by(User.name, User.id)
    )
    members: list[Member] = []
    for membership_row, user in result.all():
        assert isinstance(membership_row, Membership)
        assert isinstance(user, User)
        members.append(Member(membership=membership_row, user=user))
    return members


async def _owner_count(scope: TenantScope) -> int:
    return await scope.count(scope.select(Membership).where(Membership.role == Role.OWNER))


def _check_may_manage(caller: Principal, target_role: Role, new_role: Role | None = None) -> None:
    if target_role is Role.OWNER and caller.role is not Role.OWNER:
        raise Forbidden("Only an owner can change or remove an owner.")
    if new_role is not None and not at_least(caller.role, new_role):
        raise Forbidden("You cannot give someone a role above your own.")


async def change_role(
    scope: TenantScope, caller: Principal, membership_id: uuid.UUID, role: Role
) -> Membership:
    target = await scope.get(Membership, membership_id, for_update=True, what="member")
    _check_may_manage(caller, target.role, role)
    if target.role is role:
        return target
    if target.role is Role.OWNER and await _owner_count(scope) <= 1:
        raise Conflict("An organisation needs at least one owner. Make someone else owner first.")
    previous = target.role
    target.role = role
    await scope.session.flush()
    await audit.record(
        scope.session,
        action="team.role.changed",
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="user",
        target_id=str(target.user_id),
        details={"from": previous.value, "to": role.value},
    )
    return target


async def remove_member(scope: TenantScope, caller: Principal, membership_id: uuid.UUID) -> None:
    target = await scope.get(Membership, membership_id, for_update=True, what="member")
    _check_may_manage(caller, target.role)
    if target.role is Role.OWNER and await _owner_count(scope) <= 1:
        raise Conflict("An organisation needs at least one owner. Make someone else owner first.")
    await scope.delete(target)
    await audit.record(
        scope.session,
        action="team.member.removed",
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="user",
        target_id=str(target.user_id),
        details={"role": target.role.value},
    )


async def list_invitations(scope: TenantScope) -> list[Invitation]:
    now = datetime.now(UTC)
    result = await scope.session.execute(
        scope.select(Invitation)
        .where(
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
        )
        .order_by(Invitation.id.desc())
    )
    return list(result.scalars())


async def invite(
    scope: TenantScope,
    caller: Principal,
    *,
    email: str,
    role: Role,
    public_url: str,
) -> Invitation:
    """Invite ``email``; a pending invitation to the same address is replaced (a re-send)."""
    email = normalise_email(email)
    _check_may_manage(caller, Role.VIEWER, role)
    existing_user = await scope.session.scalar(select(User).where(User.email == email))
    if existing_user is not None and await membership(
        scope.session, user_id=existing_user.id, organisation_id=scope.organisation_id
    ):
        raise Conflict("This person is already a member.", field="email")
    now = datetime.now(UTC)
    await scope.session.execute(
        update(Invitation)
        .where(
            Invitation.organisation_id == scope.organisation_id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = new_token()
    invitation = scope.add(
        Invitation(
            email=email,
            role=role,
            token_hash=token_hash(token),
            invited_by_user_id=caller.user_id,
            expires_at=now + INVITATION_LIFETIME,
        )
    )
    await scope.session.flush()
    organisation = await scope.session.get(Organisation, scope.organisation_id)
    assert organisation is not None
    inviter = caller.email or "A team member"
    await queue_email(
        scope.session,
        to=email,
        subject=f"You are invited to {organisation.name} on Cybergine",
        body=(
            f"{inviter} invited you to join {organisation.name} on Cybergine as {role.value}.\n\n"
            f"Accept the invitation: {public_url}/invitations/{token}\n\n"
            f"The link works once and expires in {INVITATION_LIFETIME.days} days. "
            "If you did not expect it, ignore this e-mail."
        ),
    )
    await audit.record(
        scope.session,
        action="team.invitation.created",
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="invitation",
        target_id=str(invitation.id),
        details={"role": role.value},
    )
    return invitation


async def revoke_invitation(
    scope: TenantScope, caller: Principal, invitation_id: uuid.UUID
) -> None:
    invitation = await scope.get(Invitation, invitation_id, for_update=True, what="invitation")
    if invitation.accepted_at is not None:
        raise Conflict("This invitation was already accepted.")
    if invitation.revoked_at is None:
        invitation.revoked_at = datetime.now(UTC)
        await audit.record(
            scope.session,
            action="team.invitation.revoked",
            actor=caller.actor,
            organisation_id=scope.organisation_id,
            target_type="invitation",
            target_id=str(invitation.id),
        )


async def find_invitation(session: AsyncSession, token: str) -> tuple[Invitation, Organisation]:
    """The invitation a link points to, if it can still be used. Reached by the link's
    token, not by an organisation: the person following it belongs to none yet."""
    result = await session.execute(
        select(Invitation, Organisation)
        .join(Organisation, Organisation.id == Invitation.organisation_id)
        .where(Invitation.token_hash == token_hash(token))
        .with_for_update(of=Invitation)
    )
    row = result.one_or_none()
    if row is None:
        raise InvitationUnusable("This invitation link is not valid.")
    invitation, organisation = row
    if invitation.accepted_at is not None:
        raise InvitationUnusable("This invitation was already used.")
    if invitation.revoked_at is not None:
        raise InvitationUnusable("This invitation was withdrawn. Ask for a new one.")
    if invitation.expires_at <= datetime.now(UTC):
        raise InvitationUnusable("This invitation has expired. Ask for a new one.")
    return invitation, organisation


async def accept_invitation(session: AsyncSession, *, token: str, user: User) -> Membership:
    invitation, organisation = await find_invitation(session, token)
    if invitation.email != user.email:
        raise InvalidInput(
            f"This invitation is for {invitation.email}. Sign in with that address to accept it."
        )
    invitation.accepted_at = datetime.now(UTC)
    existing = await membership(
        session, user_id=user.id, organisation_id=invitation.organisation_id
    )
    if existing is None:
        existing = Membership(
            organisation_id=invitation.organisation_id, user_id=user.id, role=invitation.role
        )
        session.add(existing)
    await session.flush()
    await audit.record(
        session,
        action="team.invitation.accepted",
        actor=audit.Actor.user(str(user.id), email=user.email),
        organisation_id=organisation.id,
        target_type="invitation",
        target_id=str(invitation.id),
        details={"role": invitation.role.value},
    )
    return existing
