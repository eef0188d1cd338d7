"""Pages before and around sign-in: sign-in, sign-up, sign-out, password reset,
invitations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import IntegrityError

from cybergine.accounts.auth import (
    SESSION_COOKIE,
    browser_session,
    check_anonymous_csrf,
    check_csrf,
    public,
)
from cybergine.accounts.models import User
from cybergine.accounts.service import login, password_reset, sessions, signup, team, users
from cybergine.dashboard.forms import fields, safe_next
from cybergine.dashboard.templating import redirect, render
from cybergine.errors import Conflict, CybergineError, TooManyRequests
from cybergine.settings import Settings
from cybergine.web.clients import client_ip
from cybergine.web.deps import DatabaseDep, SessionDep, SettingsDep

router = APIRouter(include_in_schema=False)

Public = Annotated[None, public("signing in needs no prior sign-in")]


def _sign_in_response(settings: Settings, user_session_token: str, target: str) -> Response:
    response = redirect(safe_next(target))
    max_age = int((sessions.ABSOLUTE_LIFETIME).total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        user_session_token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.behind_https,
        path="/",
    )
    return response


def _too_many(page: HTMLResponse, exc: TooManyRequests) -> HTMLResponse:
    page.status_code = exc.status
    page.headers["retry-after"] = str(exc.extra["retry_after"])
    return page


def _outbox_available(request: Request) -> bool:
    from cybergine.dashboard.misc_pages import outbox_allowed

    return outbox_allowed(request)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, _public: Public, next: str = "/") -> HTMLResponse:
    return render(
        request,
        "login.html",
        {"next": safe_next(next), "email": "", "outbox_available": _outbox_available(request)},
    )


@router.post("/login")
async def login_submit(
    request: Request,
    _public: Public,
    session: SessionDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> Response:
    await check_anonymous_csrf(request)
    form = await fields(request, "email", "password", "next")
    outcome = await login.sign_in(
        session, database, email=form["email"], password=form["password"], ip=client_ip(request)
    )
    if outcome.user is None:
        return render(
            request,
            "login.html",
            {
                "next": safe_next(form["next"]),
                "email": form["email"],
                "error": outcome.error,
                "outbox_available": _outbox_available(request),
            },
            status_code=429 if outcome.error == login.THROTTLED else 400,
        )
    options = await users.memberships_of(session, outcome.user.id)
    _, token = await sessions.create_session(
        session, user=outcome.user, organisation_id=options[0][1].id if options else None
    )
    return _sign_in_response(settings, token, form["next"])


@router.post("/logout")
async def logout(request: Request, _public: Public, session: SessionDep) -> Response:
    signed_in = await browser_session(request, session)
    if signed_in is not None:
        await check_csrf(request, str(signed_in.session_id))
        await sessions.end_session(session, signed_in.user_session)
    response = redirect("/login", notice="signed-out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/signup", response_class=HTMLResponse)
async def signup_page(request: Request, _public: Public) -> HTMLResponse:
    return render(request, "signup.html", {"form": {}})


@router.post("/signup")
async def signup_submit(
    request: Request,
    _public: Public,
    session: SessionDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> Response:
    """Answers "check your e-mail" whether or not the address has an account."""
    await check_anonymous_csrf(request)
    form = await fields(request, "name", "email", "organisation_name")
    try:
        email = await signup.request_sign_up(
            session,
            database,
            email=form["email"],
            name=form["name"],
            organisation_name=form["organisation_name"],
            ip=client_ip(request),
            public_url=settings.public_url,
        )
    except TooManyRequests as exc:
        return _too_many(render(request, "signup.html", {"form": form, "error": exc.detail}), exc)
    except CybergineError as exc:
        return render(
            request, "signup.html", {"form": form, "error": exc.detail}, status_code=exc.status
        )
    return render(
        request,
        "signup_sent.html",
        {"email": email, "outbox_available": _outbox_available(request)},
    )


@router.get("/signup/confirm/{token}", response_class=HTMLResponse)
async def signup_confirm_page(
    request: Request, _public: Public, token: str, session: SessionDep
) -> HTMLResponse:
    # A page, not the sign-up itself: mail scanners open links, people press buttons.
    pending = signup.open_link(token)
    exists = await users.find_user_by_email(session, pending.email) is not None
    return render(
        request, "signup_confirm.html", {"token": token, "pending": pending, "exists": exists}
    )


@router.post("/signup/confirm/{token}")
async def signup_confirm(
    request: Request, _public: Public, token: str, session: SessionDep, settings: SettingsDep
) -> Response:
    await check_anonymous_csrf(request)
    form = await fields(request, "password")
    pending = signup.open_link(token)
    try:
        try:
            async with session.begin_nested():
                user, organisation = await signup.finish_sign_up(
                    session, token=token, password=form["password"]
                )
        except IntegrityError as exc:  # the same link, finished twice at once
            raise Conflict("Your account already exists: sign in.") from exc
    except CybergineError as exc:
        return render(
            request,
            "signup_confirm.html",
            {
                "token": token,
                "pending": pending,
                "exists": isinstance(exc, Conflict),
                "error": exc.detail,
            },
            status_code=exc.status,
        )
    user.last_login_at = datetime.now(UTC)
    _, session_token = await sessions.create_session(
        session, user=user, organisation_id=organisation.id
    )
    return _sign_in_response(settings, session_token, "/")


@router.get("/password/forgot", response_class=HTMLResponse)
async def forgot_page(request: Request, _public: Public) -> HTMLResponse:
    return render(request, "forgot.html")


@router.post("/password/forgot")
async def forgot_submit(
    request: Request,
    _public: Public,
    session: SessionDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> Response:
    await check_anonymous_csrf(request)
    form = await fields(request, "email")
    try:
        await password_reset.request_reset(
            session,
            database,
            email=form["email"],
            ip=client_ip(request),
            public_url=settings.public_url,
        )
    except TooManyRequests as exc:
        return _too_many(render(request, "forgot.html", {"error": exc.detail}), exc)
    return redirect("/login", notice="reset-sent")


@router.get("/password/reset/{token}", response_class=HTMLResponse)
async def reset_page(
    request: Request, _public: Public, token: str, session: SessionDep
) -> HTMLResponse:
    _, user = await password_reset.find_reset(session, token)
    return render(request, "reset.html", {"token": token, "email": user.email})


@router.post("/password/reset/{token}")
async def reset_submit(
    request: Request, _public: Public, token: str, session: SessionDep
) -> Response:
    await check_anonymous_csrf(request)
    form = await fields(request, "password")
    _, user = await password_reset.find_reset(session, token)
    try:
        async with session.begin_nested():
            await password_reset.reset_password(session, token=token, password=form["password"])
    except CybergineError as exc:
        if isinstance(exc, password_reset.ResetLinkUnusable):
            raise
        return render(
            request,
            "reset.html",
            {"token": token, "email": user.email, "error": exc.detail},
            status_code=exc.status,
        )
    response = redirect("/login", notice="password-reset")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/invitations/{token}", response_class=HTMLResponse)
async def invitation_page(
    request: Request, _public: Public, token: str, session: SessionDep
) -> HTMLResponse:
    invitation, organisation = await team.find_invitation(session, token)
    signed_in = await browser_session(request, session)
    has_account = await users.find_user_by_email(session, invitation.email) is not None
    return render(
        request,
        "invitation.html",
        {
            "token": token,
            "invitation": invitation,
            "organisation": organisation,
            "has_account": has_account,
        },
        signed_in=signed_in,
    )


@router.post("/invitations/{token}/accept")
async def invitation_accept(
    request: Request, _public: Public, token: str, session: SessionDep
) -> Response:
    signed_in = await browser_session(request, session)
    if signed_in is None:
        return redirect(f"/login?next=/invitations/{token}")
    await check_csrf(request, str(signed_in.session_id))
    membership = await team.accept_invitation(session, token=token, user=signed_in.user)
    signed_in.user_session.active_organisation_id = membership.organisation_id
    return redirect("/", notice="joined")


@router.post("/invitations/{token}/register")
async def invitation_register(
    request: Request, _public: Public, token: str, session: SessionDep, settings: SettingsDep
) -> Response:
    await check_anonymous_csrf(request)
    form = await fields(request, "name", "password")
    invitation, organisation = await team.find_invitation(session, token)
    try:
        async with session.begin_nested():
            user: User = await users.create_user(
                session, email=invitation.email, name=form["name"], password=form["password"]
            )
    except CybergineError as exc:
        return render(
            request,
            "invitation.html",
            {
                "token": token,
                "invitation": invitation,
                "organisation": organisation,
                "has_account": False,
                "error": exc.detail,
            },
            status_code=exc.status,
        )
    membership = await team.accept_invitation(session, token=token, user=user)
    user.last_login_at = datetime.now(UTC)
    _, session_token = await sessions.create_session(
        session, user=user, organisation_id=membership.organisation_id
    )
    return _sign_in_response(settings, session_token, "/")
