"""``/metrics`` answers a client on this machine; anyone else needs the bearer token
(CYBERGINE_METRICS_TOKEN), and without one set gets 404; ``CYBERGINE_METRICS=off``
turns it all off. Who the client is, is the app's one decision (``web.proxies``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from cybergine.app import create_app
from cybergine.settings import Settings
from tests.observability.conftest import scrape, value
from tests.support.server import LiveServer

TOKEN = "a-metrics-token-for-the-tests-0123456789"
VISITOR = "203.0.113.9"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})


@pytest.fixture
def behind_proxy(settings: Settings) -> Iterator[LiveServer]:
    """The app behind a proxy it trusts, on this machine: clients are who it says."""
    behind = settings.model_copy(update={"trusted_proxies": "127.0.0.1"})
    with LiveServer(create_app(behind, run_worker=False)) as server:
        yield server


def _refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert "cybergine_" not in response.text


def test_a_client_on_this_machine_reads_the_metrics_without_a_token(
    live_server: LiveServer,
) -> None:
    with live_server.client() as http:
        before = scrape(http)
        assert http.get("/healthz").status_code == 200
        after = scrape(http)
    name = "cybergine_http_request_duration_seconds_count"
    labels = {"route": "/healthz", "method": "GET", "status": "2xx"}
    assert value(after, name, **labels) == value(before, name, **labels) + 1


def test_a_client_beyond_this_machine_needs_the_bearer_token(
    behind_proxy: LiveServer,
) -> None:
    with behind_proxy.client(headers={"x-forwarded-for": VISITOR}) as http:
        missing = http.get("/metrics")
        _refused(missing, 401)
        assert missing.headers["www-authenticate"].startswith("Bearer")
        _refused(http.get("/metrics", headers={"authorization": "Bearer not-it"}), 401)
        _refused(http.get("/metrics", headers={"authorization": TOKEN}), 401)  # no scheme
        granted = http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert granted.status_code == 200, granted.text
    assert "cybergine_job_queue_depth" in granted.text


def test_a_proxy_on_this_machine_makes_no_visitor_local(live_server: LiveServer) -> None:
    """Forwarded headers from a proxy the app was not told about: the peer is loopback,
    but the request came through a proxy, so the client may be anyone."""
    with live_server.client(headers={"x-forwarded-for": VISITOR}) as http:
        _refused(http.get("/metrics"), 401)
        assert http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).is_success


async def test_a_remote_peer_without_a_proxy_needs_the_token(settings: Settings) -> None:
    """A client connecting straight from another address (the ASGI client tuple), as
    when the port is published without a proxy."""
    app = create_app(settings, run_worker=False)
    transport = httpx.ASGITransport(app=app, client=(VISITOR, 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://cybergine") as http:
        _refused(await http.get("/metrics"), 401)


def test_without_a_token_set_the_metrics_are_not_offered_beyond_this_machine(
    settings: Settings,
) -> None:
    no_token = settings.model_copy(update={"metrics_token": None})
    with LiveServer(create_app(no_token, run_worker=False)) as server:
        with server.client(headers={"x-forwarded-for": VISITOR}) as http:
            _refused(http.get("/metrics"), 404)
            _refused(http.get("/metrics", headers={"authorization": "Bearer anything"}), 404)
        with server.client() as http:
            assert http.get("/metrics").status_code == 200


def test_metrics_off_answers_404_and_measures_nothing(settings: Settings) -> None:
    off = settings.model_copy(update={"metrics": False})
    with LiveServer(create_app(off, run_worker=False)) as server, server.client() as http:
        for _ in range(3):
            assert http.get("/healthz").status_code == 200
        _refused(http.get("/metrics"), 404)
        _refused(http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}), 404)
        middleware = [entry.cls.__name__ for entry in server.app.user_middleware]  # type: ignore[attr-defined]
    assert "HttpMetricsMiddleware" not in middleware
