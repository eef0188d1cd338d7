"""Every series ``/metrics`` promises moves with the traffic that should move it, with
bounded labels; and every metric the Grafana dashboard and the alert rules in
``deploy/`` name is exposed by a running server after that traffic."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect
from websockets.typing import Origin

from cybergine.db.engine import Database
from cybergine.job_names import JobName
from cybergine.observability.api import known_queues
from cybergine.queue import defer
from cybergine.settings import Settings
from tests.observability.conftest import scrape, value
from tests.support.jobs import run_jobs
from tests.support.openai_simulator import Fault, OpenAISimulator
from tests.support.server import LiveServer
from tests.support.whatsapp import Shop

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "cybergine.json"
RULES = DEPLOY / "alerts" / "cybergine-rules.yaml"
METRIC_NAME = re.compile(r"\bcybergine_[a-z0-9_]+\b")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SHOP = "https://shop.example"
REPLY_TASK = "conversations:reply"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"outbound_allowed_hosts": "127.0.0.1"})


def referenced_metrics() -> set[str]:
    """Every metric name the dashboard and the alert rules mention, in a query or not."""
    text = DASHBOARD.read_text() + RULES.read_text()
    assert json.loads(DASHBOARD.read_text())["panels"]
    return set(METRIC_NAME.findall(text))


def _open_and_close_a_socket(shop: Shop, server: LiveServer) -> tuple[float, float]:
    """Opens a widget socket; returns the open-sockets gauge while it is open and after."""
    created = shop.api.post("/api/v1/assistants", json={"name": "Web", "allowed_origins": [SHOP]})
    assert created.status_code == 201, created.text
    with server.client() as http:
        session = http.post(
            "/widget/v1/session",
            json={"widget_key": created.json()["widget_key"]},
            headers={"Origin": SHOP},
        )
        assert session.status_code == 200, session.text
        token = session.json()["visitor_token"]
        url = server.url.replace("http://", "ws://") + f"/widget/v1/socket?token={token}"
        gauge = ("cybergine_open_sockets", frozenset({("route", "/widget/v1/socket")}))
        before = scrape(http).get(gauge, 0.0)
        with connect(url, origin=Origin(SHOP), open_timeout=5) as socket:
            socket.send('{"type": "ping"}')
            assert json.loads(socket.recv(timeout=5)) == {"type": "pong"}  # accepted, counted
            while_open = scrape(http)[gauge]
        deadline = time.monotonic() + 10
        after = scrape(http)[gauge]
        while after != before and time.monotonic() < deadline:
            time.sleep(0.05)  # the server notices the close on its own time
            after = scrape(http)[gauge]
    return while_open - before, after - before


async def _a_checkout_waits(database_url: str) -> None:
    """A pool of one connection (and one in overflow), both taken: a third waits."""
    small = Database(database_url, pool_size=1)
    try:
        first = await small.engine.connect()
        second = await small.engine.connect()
        waiting = asyncio.ensure_future(small.engine.connect())
        await asyncio.sleep(0)  # the checkout starts, finds none free, waits
        await first.close()
        third = await asyncio.wait_for(waiting, timeout=10)
        await third.close()
        await second.close()
    finally:
        await small.dispose()


@pytest.mark.slow
async def test_traffic_moves_every_series_and_the_dashboard_and_alerts_find_theirs(
    llm_shop: Shop, llm: OpenAISimulator, live_server: LiveServer, database_url: str
) -> None:
    with live_server.client() as http:
        before = scrape(http)

    # Two customers ask; the first question's model call fails (its answer falls back).
    llm.fail_next(Fault(status=400))
    llm_shop.says("What is your return policy?")
    llm_shop.says("How long does shipping take?", wa_id="15550002222")
    await llm_shop.work()
    forged = llm_shop.graph.inbound_webhook(llm_shop.phone_number_id, "15550003333", "hi")
    assert llm_shop.post(forged, secret="not-the-app-secret").status_code == 401
    with live_server.client() as http:
        shopify = http.post(
            "/webhooks/shopify", content=b"{}", headers={"x-shopify-hmac-sha256": "x"}
        )
        assert shopify.status_code == 401
    # A job that fails: a reply job for something that is no message id.
    async with llm_shop.database.transaction() as session:
        await defer(session, JobName.REPLY, message_id="not-a-message-id")
    await run_jobs(llm_shop.database, llm_shop.settings)
    opened, closed = _open_and_close_a_socket(llm_shop, live_server)
    await _a_checkout_waits(database_url)
    [conversation, *_] = llm_shop.conversations()
    assert llm_shop.messages(conversation["id"])

    with live_server.client() as http:
        after = scrape(http)
        text = http.get("/metrics").text

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # The questions, and the simulator's status webhooks for the answers sent.
    assert grew("cybergine_webhook_deliveries_total", channel="whatsapp", outcome="accepted") >= 2
    assert grew("cybergine_webhook_signature_failures_total", channel="whatsapp") == 1
    assert grew("cybergine_webhook_signature_failures_total", channel="shopify") == 1
    assert (
        grew("cybergine_webhook_deliveries_total", channel="whatsapp", outcome="signature_failure")
        == 1
    )
    answered = sum(
        grew("cybergine_reply_latency_seconds_count", channel="whatsapp", outcome=outcome)
        for outcome in ("answered", "fallback")
    )
    assert answered == 2
    assert grew("cybergine_job_duration_seconds_count", task=REPLY_TASK, status="succeeded") == 2
    assert grew("cybergine_job_failures_total", task=REPLY_TASK) == 1
    assert grew("cybergine_job_duration_seconds_count", task=REPLY_TASK, status="failed") == 1
    assert grew("cybergine_model_call_errors_total", provider="openai", reason="http_4xx") == 1
    assert grew("cybergine_model_call_duration_seconds_count", provider="openai", outcome="ok") >= 1
    assert grew("cybergine_model_tokens_total", provider="openai", kind="prompt") > 0
    assert grew("cybergine_model_tokens_total", provider="openai", kind="completion") > 0
    assert grew("cybergine_db_pool_wait_seconds_count", process="web") >= 1
    assert (opened, closed) == (1, 0)
    route = "/api/v1/conversations/{conversation_id}/messages"
    assert (
        grew(
            "cybergine_http_request_duration_seconds_count", route=route, method="GET", status="2xx"
        )
        == 1
    )
    for queue in known_queues():  # every queue, also when empty
        assert ("cybergine_job_queue_depth", frozenset({("queue", queue)})) in after
        assert ("cybergine_job_queue_oldest_age_seconds", frozenset({("queue", queue)})) in after

    # Bounded labels: no id, no raw path, no organisation anywhere.
    assert not UUID.search(text)
    assert str(llm_shop.organisation_id) not in text
    routes = {dict(labels).get("route") for name, labels in after if "route" in dict(labels)}
    assert all(r == "unmatched" or r.startswith("/") for r in routes if r)

    exposed = {name for name, _ in after}
    referenced = referenced_metrics()
    assert referenced, "the dashboard and the rules name no metric"
    assert not referenced - exposed, f"named but not exposed: {sorted(referenced - exposed)}"


def test_no_dashboard_query_sums_the_queue_series_every_web_process_repeats() -> None:
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    for expr in exprs:
        if "cybergine_job_queue_" in expr:
            assert not expr.startswith("sum"), expr
