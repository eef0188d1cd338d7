"""RFC 9457 problem details: the one shape of every API error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cybergine.errors import CybergineError
from cybergine.web.clients import granted_origin

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Domain problem types are URNs: stable identifiers that need no server behind them.
PROBLEM_BASE = "urn:cybergine:problem:"

log = structlog.get_logger(__name__)

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_slug: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + type_slug if type_slug else "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


# Renders an error for a person in a browser: (request, status, title, detail, error).
HtmlErrorRenderer = Callable[[Request, int, str, str, Exception], Awaitable[Response]]


def wants_html(request: Request) -> bool:
    """Dashboard pages answer errors as pages (and "sign in first" as a redirect to the
    sign-in page) whoever asks; the API, webhooks and probes answer problem+json."""
    path = request.url.path
    return not path.startswith(
        (
            "/api/",
            "/shopify/api/",
            "/webhooks/",
            "/widget/",
            "/widget.js",
            "/healthz",
            "/readyz",
            "/static/",
        )
    )


def _error_headers(request: Request, status: int, extra: Mapping[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    if status == 401 and request.url.path.startswith("/api/"):
        headers["www-authenticate"] = "Bearer"
    if "retry_after" in extra:
        headers["retry-after"] = str(extra["retry_after"])
    # The widget runs on other sites: it must be able to read why a request failed,
    # when it runs on a site allowed to embed it (``web.clients.grant_origin``).
    origin = granted_origin(request)
    if origin:
        headers["access-control-allow-origin"] = origin
        headers["access-control-expose-headers"] = "Retry-After"
        headers["vary"] = "Origin"
    return headers


def install(app: FastAPI, *, html: HtmlErrorRenderer | None = None) -> None:
    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CybergineError)
        if html is not None and wants_html(request):
            return await html(request, exc.status, exc.title, exc.detail, exc)
        return problem(
            exc.status,
            title=exc.title,
            detail=exc.detail,
            type_slug=exc.type_slug,
            headers={**_error_headers(request, exc.status, exc.extra), **exc.headers},
            **exc.extra,
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        if html is not None and wants_html(request):
            title = _TITLES.get(exc.status_code, "Error")
            return await html(request, exc.status_code, title, detail or title, exc)
        headers = {**_error_headers(request, exc.status_code, {}), **(exc.headers or {})}
        return problem(exc.status_code, detail=detail, headers=headers)

    app.add_exception_handler(CybergineError, domain_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "location": [str(part) for part in error.get("loc", ())],
            "message": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    return problem(
        422,
        detail="The request did not match the expected shape.",
        type_slug="invalid-input",
        headers=_error_headers(request, 422, {}),
        errors=errors,
    )
