"""Errors as a person in a browser sees them: a readable page, or the sign-in page."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from cybergine.accounts.auth import SignInRequired
from cybergine.dashboard.templating import render


async def render_error(
    request: Request, status: int, title: str, detail: str, error: Exception
) -> Response:
    if isinstance(error, SignInRequired):
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
    return render(
        request,
        "error.html",
        {"title": title, "detail": detail},
        signed_in=getattr(request.state, "signed_in", None),
        status_code=status,
    )
