"""Authentication and authorisation of every request, in one dependency.

``authorize(permission)`` resolves the caller (an API key from ``Authorization: Bearer``,
or a browser session cookie), checks CSRF for cookie-authenticated unsafe requests,
checks the permission against the role, audits a denial, and hands the route a
``Caller`` whose ``scope`` is the only way to reach tenant data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.grace import refuse_if_closed, visible
from cybergine.accounts.models import Membership, Organisation, Role, User
from cybergine.accounts.permissions import WRITABLE_DURING_DELETION_GRACE, Permission, at_least
from cybergine.accounts.principal import Principal
from cybergine.accounts.service import api_keys, sessions
from cybergine.accounts.service.users import memberships_of
from cybergine.accounts.tokens import constant_time_equal, keyed_hash
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.errors import CybergineError, Forbidden, Unauthorized
from cybergine.privacy import audit
from cybergine.web.access import (
    GRACE_REFUSAL_ATTRIBUTE,
    PERMISSION_ATTRIBUTE,
    UNSAFE_METHODS,
    public,
)
from cybergine.web.deps import DatabaseDep, SessionDep

log = structlog.get_logger(__name__)

SESSION_COOKIE = "cybergine_session"
ANONYMOUS_CSRF_COOKIE = "cybergine_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
# Where a request made with an API key keeps its principal and route (request.state).
API_KEY_CALL = "api_key_call"


class SignInRequired(CybergineError):
    status = 401
    type_slug = "sign-in-required"
    title = "Sign in required"


class CsrfFailed(CybergineError):
    status = 403
    type_slug = "csrf-failed"
    title = "Form expired"


class NoOrganisation(CybergineError):
    status = 403
    type_slug = "no-organisation"
    title = "No organisation"


@dataclass(frozen=True)
class Caller:
    principal: Principal
    scope: TenantScope
    signed_in: sessions.SignedIn | None = None

    @property
    def session(self) -> AsyncSession:
        return self.scope.session


# --- CSRF -------------------------------------------------------------------------


def csrf_token(binding: str) -> str:
    """The token a form must echo. Bound to the browser session (or, before sign-in, to
    a random cookie), keyed with the server secret: a page on another site can neither
    read nor forge it."""
    return keyed_hash("csrf", binding)


async def _presented_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def check_csrf(request: Request, binding: str | None) -> None:
    presented = await _presented_csrf(request)
    if not binding or not presented or not constant_time_equal(presented, csrf_token(binding)):
        raise CsrfFailed(
            "This form has expired or did not come from this site. Reload the page and try again."
        )


async def check_anonymous_csrf(request: Request) -> None:
    """For forms shown before sign-in (sign-in, sign-up, password reset)."""
    await check_csrf(request, request.cookies.get(ANONYMOUS_CSRF_COOKIE))


# --- Browser sessions -------------------------------------------------------------


async def browser_session(request: Request, session: AsyncSession) -> sessions.SignedIn | None:
    cached = getattr(request.state, "signed_in", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    signed_in = await sessions.resume_session(session, token)
    request.state.signed_in = signed_in
    return signed_in


async def _principal_from_browser(
    request: Request, session: AsyncSession, signed_in: sessions.SignedIn
) -> Principal:
    user_session, user = signed_in.user_session, signed_in.user
    found, shown = None, True
    if user_session.active_organisation_id is not None:
        row = (
            await session.execute(
                select(Membership, Organisation.status)
                .join(Organisation, Organisation.id == Membership.organisation_id)
                .where(
                    Membership.user_id == user.id,
                    Membership.organisation_id == user_session.active_organisation_id,
                )
            )
        ).one_or_none()
        if row is not None:
            found, shown = row[0], visible(row[1])
    if found is None or not shown:
        # Removed from the organisation the session pointed at, or it is hidden (its shop
        # uninstalled the app): fall back to another, one that is shown if there is one.
        options = await memberships_of(session, user.id)
        if not options:
            raise NoOrganisation(
                "You are not a member of any organisation. Ask for an invitation, or sign up. "
                "Your account page (/account) still lets you download your data or delete "
                "your account."
            )
        others = [m for m, organisation in options if visible(organisation.status)]
        if others or found is None:
            found = (others or [options[0][0]])[0]
            user_session.active_organisation_id = found.organisation_id
    return Principal(
        organisation_id=found.organisation_id, role=found.role, user_id=user.id, email=user.email
    )


async def _authenticate(
    request: Request, session: AsyncSession
) -> tuple[Principal, sessions.SignedIn | None]:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthorized("Send the API key as `Authorization: Bearer <key>`.")
        principal = await api_keys.authenticate(session, credentials.strip())
        if principal is None:
            raise Unauthorized("This API key is not valid, or it was revoked.")
        # The key and the route's template, for the API usage log written once the
        # response is sent (``analytics.api_usage``).
        setattr(request.state, API_KEY_CALL, (principal, request.scope.get("route")))
        return principal, None
    signed_in = await browser_session(request, session)
    if signed_in is None:
        if request.url.path.startswith("/api/"):
            raise Unauthorized("Send an API key as `Authorization: Bearer <key>`.")
        raise SignInRequired("Sign in to continue.")
    if request.method in UNSAFE_METHODS:
        await check_csrf(request, str(signed_in.session_id))
    return await _principal_from_browser(request, session, signed_in), signed_in


async def _audit_denial(
    database: Database, principal: Principal, permission: Permission, request: Request
) -> None:
    # Its own transaction: the request's transaction rolls back with the 403.
    try:
        async with database.transaction() as session:
            await audit.record(
                session,
                action="auth.permission.denied",
                actor=principal.actor,
                organisation_id=principal.organisation_id,
                details={
                    "permission": permission.value,
                    "role": principal.role.value,
                    "method": request.method,
                    "path": request.url.path,
                },
            )
    except Exception:
        log.exception("could not audit a permission denial")


async def _caller(
    request: Request, session: AsyncSession, database: Database, permission: Permission
) -> Caller:
    principal, signed_in = await _authenticate(request, session)
    if not principal.can(permission):
        await _audit_denial(database, principal, permission, request)
        raise Forbidden(f"Your role ({principal.role.value}) does not allow this.")
    # Policy §11: read-only while the organisation waits for its erasure; §8b: hidden
    # once its Shopify shop uninstalled the app.
    writing = request.method in UNSAFE_METHODS and permission not in WRITABLE_DURING_DELETION_GRACE
    await refuse_if_closed(session, principal.organisation_id, writing=writing)
    return Caller(
        principal=principal,
        scope=TenantScope(session, principal.organisation_id),
        signed_in=signed_in,
    )


def authorize(permission: Permission) -> Any:
    """``Annotated[Caller, authorize(Permission.X)]`` on every route that is not public."""

    async def dependency(request: Request, session: SessionDep, database: DatabaseDep) -> Caller:
        return await _caller(request, session, database, permission)

    setattr(dependency, PERMISSION_ATTRIBUTE, permission)
    setattr(dependency, GRACE_REFUSAL_ATTRIBUTE, permission not in WRITABLE_DURING_DELETION_GRACE)
    dependency.__name__ = f"authorize_{permission.name.lower()}"
    return Depends(dependency)


@dataclass(frozen=True)
class Authorized:
    """A caller checked in a transaction that is already over: the route holds no
    database connection until it opens its own with ``transaction()``."""

    principal: Principal
    database: Database
    # The browser's session, for a dashboard page rendered in ``transaction()``.
    signed_in: sessions.SignedIn | None = None
    # What ``transaction()`` checks again: a key revoked (or a role lowered) while the
    # slow work ran must not write.
    request: Request | None = None
    permission: Permission | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Caller]:
        """The route's transaction, committed when the block ends (the edge commits);
        the caller is checked again in it, so the write sees the credential as it is
        now."""
        async with self.database.transaction() as session:
            if self.request is not None and self.permission is not None:
                yield await _caller(self.request, session, self.database, self.permission)
                return
            yield Caller(
                principal=self.principal,
                scope=TenantScope(session, self.principal.organisation_id),
                signed_in=self.signed_in,
            )


def authorize_outside_transaction(permission: Permission) -> Any:
    """``Annotated[Authorized, authorize_outside_transaction(Permission.X)]`` for a route
    with slow work before its writes (reading an uploaded file's text): the caller is
    resolved and checked in a short transaction of its own, so no connection sits idle in
    a transaction while the work runs."""

    async def dependency(request: Request, database: DatabaseDep) -> Authorized:
        async with database.transaction() as session:
            caller = await _caller(request, session, database, permission)
        return Authorized(
            principal=caller.principal,
            database=database,
            signed_in=caller.signed_in,
            request=request,
            permission=permission,
        )

    setattr(dependency, PERMISSION_ATTRIBUTE, permission)
    setattr(dependency, GRACE_REFUSAL_ATTRIBUTE, permission not in WRITABLE_DURING_DELETION_GRACE)
    dependency.__name__ = f"authorize_{permission.name.lower()}_outside_transaction"
    return Depends(dependency)


# The protection mark of a route about the signed-in person's own account.
ACCOUNT_HOLDER = "account holder: the signed-in person, acting on their own account"


@dataclass(frozen=True)
class AccountHolder:
    """A signed-in person acting on their own account, in whichever organisations (or
    none) they belong to. ``caller`` is them in their current organisation, if they have
    one (the dashboard's pages show its navigation)."""

    signed_in: sessions.SignedIn
    session: AsyncSession
    caller: Caller | None = None

    @property
    def user(self) -> User:
        return self.signed_in.user


def authorize_account_holder() -> Any:
    """``Annotated[AccountHolder, authorize_account_holder()]``: a browser session only.
    An API key acts for an organisation, never as one of its people, so it cannot read,
    change or delete anyone's account."""

    async def dependency(request: Request, session: SessionDep) -> AccountHolder:
        if request.headers.get("authorization") is not None:
            # Checked as anywhere else first: a key that is not one is a 401.
            await _authenticate(request, session)
            raise Forbidden(
                "An API key acts for an organisation, not for a person. Your own account is "
                "reached signed in, with your browser session."
            )
        signed_in = await browser_session(request, session)
        if signed_in is None:
            if request.url.path.startswith("/api/"):
                raise Unauthorized("Sign in: your own account is reached with your session.")
            raise SignInRequired("Sign in to continue.")
        if request.method in UNSAFE_METHODS:
            await check_csrf(request, str(signed_in.session_id))
        try:
            principal = await _principal_from_browser(request, session, signed_in)
        except NoOrganisation:
            return AccountHolder(signed_in=signed_in, session=session)
        caller = Caller(
            principal=principal,
            scope=TenantScope(session, principal.organisation_id),
            signed_in=signed_in,
        )
        return AccountHolder(signed_in=signed_in, session=session, caller=caller)

    setattr(dependency, PERMISSION_ATTRIBUTE, ACCOUNT_HOLDER)
    return Depends(dependency)


def role_choices(caller_role: Role) -> list[Role]:
    """The roles a caller may hand out: their own and below."""
    return [role for role in Role if at_least(caller_role, role)]


__all__ = [
    "AccountHolder",
    "Authorized",
    "Caller",
    "authorize",
    "authorize_account_holder",
    "authorize_outside_transaction",
    "public",
    "role_choices",
]
