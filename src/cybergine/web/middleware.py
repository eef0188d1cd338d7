"""Cross-cutting HTTP concerns, set once for every route, as plain ASGI middleware
(no per-request task switching, and streaming bodies stay streaming).

Order, outermost first: security headers → request context (id, access log, last-resort
error) → API usage log (``analytics/api_usage.py``) → body size limit → input hygiene
(``web/hygiene.py``) → HEAD as GET (``web/head.py``) → request time by route
(``observability/http.py``, unless ``CYBERGINE_METRICS=off``) → the app.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cybergine.web.problems import problem

log = structlog.get_logger("cybergine.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# The dashboard is server-rendered with HTMX; everything is served from our origin.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                present = {name.lower() for name, _ in headers}
                if _allows_framing(headers):
                    # A page some site may frame (the Shopify admin's embedded app) says
                    # who with its own CSP; X-Frame-Options DENY would contradict it.
                    present.add(b"x-frame-options")
                extra = [(n, v) for n, v in self.headers if n not in present]
                if b"cache-control" not in present and _is_json(headers):
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*headers, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _allows_framing(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-security-policy":
            return b"frame-ancestors" in value and b"frame-ancestors 'none'" not in value
    return False


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """JSON answers are a caller's own data (API, widget, errors), never shared: no copy
    may be kept by a browser or a cache between it and us, unless the route says so."""
    for name, value in headers:
        if name.lower() == b"content-type":
            media_type = value.split(b";", 1)[0].strip().lower()
            return media_type == b"application/json" or media_type.endswith(b"+json")
    return False


class RequestContextMiddleware:
    """Gives each request an id (the caller's ``X-Request-ID`` when well-formed), binds it
    to every log line of the request, echoes it back, and writes one access-log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return

        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", path=scope.get("path"))
            if scope["type"] == "http" and not response_started:
                response = problem(
                    500, detail="Something went wrong on our side; it has been logged."
                )
                await response(scope, receive, send_with_id)
            else:
                raise
        finally:
            if scope["type"] == "http":
                log.info(
                    "request",
                    method=scope.get("method"),
                    path=scope.get("path"),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _REQUEST_ID.match(candidate) else None
    return None


class BodySizeLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413, by declared length or while streaming,
    before the app reads them into memory."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        limit = self.max_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _too_large_or_bad(scope, receive, send, 400, "Invalid Content-Length.")
                    return
                if declared > limit:
                    await _too_large_or_bad(scope, receive, send, 413, _too_large(limit))
                    return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if response_started:
                raise
            await _too_large_or_bad(scope, receive, send, 413, _too_large(limit))


class _BodyTooLarge(Exception):
    pass


def _too_large(limit: int) -> str:
    return f"The request body is larger than the limit of {limit} bytes."


async def _too_large_or_bad(
    scope: Scope, receive: Receive, send: Send, status: int, detail: str
) -> None:
    response = problem(status, detail=detail, headers={"connection": "close"})
    await response(scope, receive, send)
