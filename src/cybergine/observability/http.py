"""Every request's time by route template, and the sockets open now.

The middleware sits innermost, right around the router, so that it sees the route the
router matched (``scope["route"]``; outer layers may copy the scope) and labels by its
template (``/api/v1/conversations/{conversation_id}``), never by the raw path: an
unmatched path is ``unmatched``. What the outer layers refuse before routing (an
oversized body, a NUL in a query) is in neither the route nor this histogram.
"""

from __future__ import annotations

import time

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cybergine.observability.metrics import HTTP_REQUEST_SECONDS, OPEN_SOCKETS
from cybergine.response_status import ResponseStatus

UNMATCHED = "unmatched"
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
# A client may send any token as its method: anything else is counted as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # (route, method, status class) -> the histogram's child, looked up once.
        self._children: dict[tuple[str, str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._socket(scope, receive, send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = ResponseStatus(send)
        try:
            await self.app(scope, receive, status)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            key = (route_template(scope), method, _STATUS_CLASSES.get(status.code // 100, "5xx"))
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = HTTP_REQUEST_SECONDS.labels(*key)
            child.observe(time.perf_counter() - started)

    async def _socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        gauge = None

        async def send_accepted(message: Message) -> None:
            nonlocal gauge
            await send(message)
            if message["type"] == "websocket.accept" and gauge is None:
                gauge = OPEN_SOCKETS.labels(route_template(scope))
                gauge.inc()

        try:
            await self.app(scope, receive, send_accepted)
        finally:
            if gauge is not None:
                gauge.dec()
