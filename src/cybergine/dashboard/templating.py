"""Rendering dashboard pages: one Jinja2 environment (autoescaping on), and the context
every page gets (the caller, the CSRF token, the organisation switcher)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from cybergine.accounts.auth import ANONYMOUS_CSRF_COOKIE, Caller, csrf_token
from cybergine.accounts.permissions import Permission
from cybergine.accounts.service.sessions import SignedIn
from cybergine.accounts.tokens import new_token
from cybergine.conversations.product_cards import cards_of
from cybergine.web.assets import AssetDirectory

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.globals["Permission"] = Permission
# Templates link static files as {{ static_url("app.css") }}: the URL carries the
# content's hash, so browsers keep the file a year and fetch a new one when it changes.
static_assets = AssetDirectory(STATIC_DIR, mount_path="/static")
templates.env.globals["static_url"] = static_assets.url_for
# A message's product cards as the customer saw them, checked (links http(s) only).
templates.env.globals["product_cards"] = cards_of

# Messages shown after a redirect, chosen by code: a link cannot inject its own text.
NOTICES = {
    "signed-out": "You are signed out.",
    "password-changed": "Your password is changed. Other browsers were signed out.",
    "profile-saved": "Your name is saved.",
    "email-change-sent": "We sent a link to your new address; it changes when you follow it.",
    "email-changed": "Your e-mail address is changed. Sign in with it from now on.",
    "account-deleted": "Your account is deleted, and what we held about you is erased.",
    "password-reset": "Your password is set. Sign in with it.",
    "reset-sent": "If an account uses that address, we sent it a link to reset the password.",
    "invited": "Invitation sent.",
    "invitation-revoked": "Invitation withdrawn.",
    "role-changed": "Role changed.",
    "member-removed": "Member removed.",
    "key-revoked": "API key revoked.",
    "settings-saved": "Settings saved.",
    "deletion-scheduled": "This organisation will be erased at the end of the grace period.",
    "deletion-cancelled": "Deletion cancelled.",
    "export-requested": "Your export is being prepared; this page shows when it is ready.",
    "joined": "You joined the organisation.",
    "switched": "Switched organisation.",
    "taken-over": "You took over: the assistant stays silent until you hand it back.",
    "reply-sent": "Your reply is on its way to the customer.",
    "note-added": "Note added. Only your team sees it.",
    "assigned": "Assignment saved.",
    "handed-back": "Handed back: the assistant answers the customer again.",
    "closed": "Conversation closed. The customer's next message starts a new one.",
    "uploaded": "Uploaded. Each file is read and indexed in a few seconds.",
    "collection-created": "Collection created.",
    "collection-deleted": "Collection deleted, with everything in it.",
    "document-saved": "Document saved.",
    "reindexing": "Indexing the document again.",
    "document-deleted": "Document deleted. Assistants no longer answer from it.",
    "qa-added": "Question added. The assistant can use it in a few seconds.",
    "qa-saved": "Question saved.",
    "qa-deleted": "Question deleted.",
    "customer-erased": "Their data is erased and their conversations are closed.",
    "request-recorded": "Request recorded, with its due date.",
    "request-updated": "Request updated.",
    "request-carried-out": "Done: the request is carried out and closed.",
    "restriction-lifted": "Restriction lifted: the assistant answers them again.",
    "assistant-created": "Assistant created. Give it knowledge to answer from, then try it.",
    "assistant-saved": "Assistant saved.",
    "assistant-deleted": "Assistant deleted.",
    "origin-added": "Website added: the chat bubble can appear there now.",
    "origin-removed": "Website removed: the chat bubble no longer appears there.",
    "appearance-saved": "Appearance saved. Your website shows it on the next page a visitor opens.",
    "number-connected": "Number connected. Now set up the webhook in Meta's dashboard.",
    "number-saved": "Number saved.",
    "number-disconnected": "Number disconnected.",
}


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    caller: Caller | None = None,
    signed_in: SignedIn | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """``caller`` for pages behind ``authorize``; ``signed_in`` for public pages that
    still know the browser's session (the invitation page)."""
    new_anonymous: str | None = None
    if caller is not None and caller.signed_in is not None:
        signed_in = caller.signed_in
    if signed_in is not None:
        token = csrf_token(str(signed_in.session_id))
    else:
        binding = request.cookies.get(ANONYMOUS_CSRF_COOKIE)
        if not binding:
            binding = new_anonymous = new_token(16)
        token = csrf_token(binding)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    response = templates.TemplateResponse(
        request,
        template,
        {
            "caller": caller,
            "principal": caller.principal if caller else None,
            "user": signed_in.viewer if signed_in else None,
            "csrf_token": token,
            "notice": notice,
            **(context or {}),
        },
        status_code=status_code,
    )
    if new_anonymous:
        settings = request.app.state.settings
        response.set_cookie(
            ANONYMOUS_CSRF_COOKIE,
            new_anonymous,
            httponly=True,
            samesite="lax",
            secure=settings.behind_https,
        )
    return response


def redirect(url: str, *, notice: str | None = None) -> RedirectResponse:
    if notice:
        assert notice in NOTICES
        url = f"{url}{'&' if '?' in url else '?'}notice={notice}"
    return RedirectResponse(url, status_code=303)


async def render_page(
    request: Request,
    template: str,
    caller: Caller,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """A page behind sign-in: adds the organisation switcher and the current organisation."""
    from cybergine.accounts.service.organisations import get_organisation
    from cybergine.accounts.service.users import memberships_of
    from cybergine.privacy_policy.service import pending_notice

    organisations = (
        await memberships_of(caller.session, caller.principal.user_id)
        if caller.principal.user_id
        else []
    )
    current = await get_organisation(caller.session, caller.principal.organisation_id)
    # A new privacy policy version, until this person acknowledges it (§18).
    policy_notice = (
        await pending_notice(caller.session, caller.principal.user_id)
        if caller.principal.user_id
        else None
    )
    return render(
        request,
        template,
        {
            "organisations": organisations,
            "current_organisation": current,
            "policy_notice": policy_notice,
            **(context or {}),
        },
        caller=caller,
        status_code=status_code,
    )
