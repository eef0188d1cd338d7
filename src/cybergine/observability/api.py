"""``GET /metrics``: Prometheus' text format, on the main port.

Open to a client on this machine that did not come through a proxy (a proxy on this
machine would make every visitor look local: ``web.proxies.came_through_proxy``); any
other client sends ``Authorization: Bearer <CYBERGINE_METRICS_TOKEN>``, or gets 401
(404 when no token is set: the metrics are not offered beyond this machine). With
``CYBERGINE_METRICS=off`` it is 404 for everyone.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from cybergine.jobs import APP
from cybergine.observability import scrape
from cybergine.web.access import public
from cybergine.web.clients import client_ip
from cybergine.web.problems import problem
from cybergine.web.proxies import came_through_proxy

router = APIRouter(include_in_schema=False)

Scraper = Annotated[
    None, public("Prometheus scrapes it; loopback clients, or CYBERGINE_METRICS_TOKEN")
]


def _loopback(request: Request) -> bool:
    if came_through_proxy(request):
        return False
    try:
        return ipaddress.ip_address(client_ip(request)).is_loopback
    except ValueError:
        return False


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def known_queues() -> set[str]:
    return {task.queue for task in APP.tasks.values()}


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(_: Scraper, request: Request) -> Response:
    settings = request.app.state.settings
    if not settings.metrics:
        return problem(404, detail="Metrics are turned off (CYBERGINE_METRICS=off).")
    if not _loopback(request):
        token = settings.metrics_token
        if token is None:
            return problem(404, detail="Not found.")
        given = _bearer(request)
        if given is None or not hmac.compare_digest(
            given.encode(), token.get_secret_value().encode()
        ):
            return problem(
                401,
                detail="Metrics need a bearer token from clients beyond this machine.",
                headers={"www-authenticate": 'Bearer realm="metrics"'},
            )
    body = await scrape.render(request.app.state.database, known_queues())
    return Response(body, media_type=CONTENT_TYPE_LATEST)
