"""The API usage log: each request made with an API key is recorded after its response
(organisation, key, method, route template, status, latency), read back per key and
route by ``GET /api/v1/analytics/api-usage`` and the API keys page, only by its own
organisation; old rows leave with the usage-log purge, and a database error delays the
log without failing a request or losing its row."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, text

from cybergine.accounts.models import ApiKey, Role
from cybergine.analytics.api_usage import ApiUsageRecorder, Call
from cybergine.analytics.api_usage_models import ApiCall
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from cybergine.privacy import purge
from cybergine.privacy.retention import MAXIMUM_AGE, Retention
from tests.support.factories import make_api_key, make_organisation, make_organisation_with_key
from tests.support.inbox import signed_in
from tests.support.server import LiveServer

USAGE = "/api/v1/analytics/api-usage"
PERIOD = {"from": "2026-01-01", "to": "2026-01-31"}
# The longest a test waits for the writer (which writes every second).
WAIT_SECONDS = 15


async def _calls(database: Database, organisation_id: uuid.UUID) -> list[ApiCall]:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(ApiCall)
            .where(ApiCall.organisation_id == organisation_id)
            .order_by(ApiCall.created_at)
        )
        return list(rows)


async def _wait_for_calls(
    database: Database, organisation_id: uuid.UUID, count: int
) -> list[ApiCall]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        calls = await _calls(database, organisation_id)
        if len(calls) >= count or time.monotonic() > deadline:
            assert len(calls) == count, [(c.method, c.route, c.status) for c in calls]
            return calls
        await asyncio.sleep(0.05)


async def _key_id(database: Database, organisation_id: uuid.UUID) -> uuid.UUID:
    async with database.transaction() as session:
        found = await session.scalar(
            select(ApiKey.id).where(ApiKey.organisation_id == organisation_id)
        )
    assert found is not None
    return found


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_a_key_s_requests_are_logged_by_route_template(
    live_server: LiveServer, database: Database
) -> None:
    shop, key = await make_organisation_with_key(database, name="Logged shop")
    missing = uuid7()
    before = datetime.now(UTC)
    with live_server.client(headers=_bearer(key)) as api:
        assert api.get("/api/v1/analytics/summary", params=PERIOD).status_code == 200
        assert api.get(f"/api/v1/conversations/{missing}", params={"x": "1"}).status_code == 404
        assert api.head("/api/v1/analytics/summary", params=PERIOD).status_code == 200
    calls = await _wait_for_calls(database, shop.id, 3)
    assert [(c.method, c.route, c.status) for c in calls] == [
        ("GET", "/api/v1/analytics/summary", 200),
        ("GET", "/api/v1/conversations/{conversation_id}", 404),
        ("HEAD", "/api/v1/analytics/summary", 200),
    ]
    key_id = await _key_id(database, shop.id)
    for call in calls:
        assert call.api_key_id == key_id
        assert 0 < call.latency_ms < 10_000
        assert before <= call.created_at <= datetime.now(UTC)
        assert str(missing) not in call.route
        assert "?" not in call.route


async def test_requests_without_a_valid_key_are_not_logged(
    live_server: LiveServer, database: Database
) -> None:
    shop, owner = await make_organisation(database, name="Session shop")
    key = await make_api_key(database, shop.id)
    with signed_in(live_server.url, owner) as browser:
        assert browser.get("/api/v1/analytics/summary").status_code == 200
    with live_server.client(headers=_bearer("cg_nothing_atall")) as stranger:
        assert stranger.get("/api/v1/analytics/summary").status_code == 401
    with live_server.client() as anonymous:
        assert anonymous.get("/api/v1/analytics/summary").status_code == 401
    # Written after them, in order: once this call is in, they would have been too.
    with live_server.client(headers=_bearer(key)) as api:
        assert api.get("/api/v1/conversations").status_code == 200
    [call] = await _wait_for_calls(database, shop.id, 1)
    assert call.route == "/api/v1/conversations"


async def _insert(database: Database, organisation_id: uuid.UUID, **fields: Any) -> None:
    row = {
        "id": uuid7(),
        "organisation_id": organisation_id,
        "api_key_id": uuid7(),
        "method": "GET",
        "route": "/api/v1/conversations",
        "status": 200,
        "latency_ms": 1.0,
        "created_at": datetime(2026, 1, 10, 12, tzinfo=UTC),
        **fields,
    }
    async with database.transaction() as session:
        await session.execute(insert(ApiCall).values(**row))


async def test_the_report_counts_requests_errors_and_latency_per_key_and_route(
    live_server: LiveServer, database: Database
) -> None:
    shop, key = await make_organisation_with_key(database, name="Reported shop")
    key_id = await _key_id(database, shop.id)
    # 100 calls of 1..100 ms: 90 answered 200, 6 a 4xx, 4 a 5xx.
    statuses = [200] * 90 + [404] * 3 + [422] * 3 + [500, 502, 503, 504]
    for latency, status in enumerate(statuses, start=1):
        await _insert(
            database, shop.id, api_key_id=key_id, status=status, latency_ms=float(latency)
        )
    await _insert(database, shop.id, api_key_id=key_id, method="POST", latency_ms=7.0)
    gone = uuid7()  # a key deleted since: its calls stay, under its id
    await _insert(database, shop.id, api_key_id=gone, route="/api/v1/knowledge/items/{item_id}")
    # Outside the period (the day after it ends, UTC).
    await _insert(database, shop.id, api_key_id=key_id, created_at=datetime(2026, 2, 1, tzinfo=UTC))

    with live_server.client(headers=_bearer(key)) as api:
        response = api.get(USAGE, params=PERIOD)
        assert response.status_code == 200, response.text
        rows = response.json()["rows"]
        only_gone = api.get(USAGE, params={**PERIOD, "api_key_id": str(gone)}).json()["rows"]
    listed = {(row["api_key_id"], row["method"], row["route"]): row for row in rows}
    busiest = listed[(str(key_id), "GET", "/api/v1/conversations")]
    assert rows[0] == busiest
    assert busiest["key_name"] == "owner key"
    assert busiest["key_prefix"]
    assert (busiest["requests"], busiest["client_errors"], busiest["server_errors"]) == (100, 6, 4)
    assert busiest["p50_ms"] == 50.5  # percentile_cont over 1..100
    assert abs(busiest["p95_ms"] - 95.05) < 1e-9
    assert listed[(str(key_id), "POST", "/api/v1/conversations")]["requests"] == 1
    deleted = listed[(str(gone), "GET", "/api/v1/knowledge/items/{item_id}")]
    assert (deleted["key_name"], deleted["requests"]) == (None, 1)
    assert len(rows) == 3
    assert [row["api_key_id"] for row in only_gone] == [str(gone)]


async def test_another_organisation_sees_none_of_them(
    live_server: LiveServer, database: Database
) -> None:
    shop, key = await make_organisation_with_key(database, name="Our shop")
    key_id = await _key_id(database, shop.id)
    await _insert(database, shop.id, api_key_id=key_id)
    _, their_key = await make_organisation_with_key(database, name="Their shop")
    with live_server.client(headers=_bearer(their_key)) as theirs:
        assert theirs.get(USAGE, params=PERIOD).json()["rows"] == []
        mine = theirs.get(USAGE, params={**PERIOD, "api_key_id": str(key_id)})
        assert (mine.status_code, mine.json()["rows"]) == (200, [])
    with live_server.client(headers=_bearer(key)) as ours:
        assert len(ours.get(USAGE, params=PERIOD).json()["rows"]) == 1


async def test_a_viewer_s_key_may_not_read_the_log(
    live_server: LiveServer, database: Database
) -> None:
    shop, _ = await make_organisation(database, name="Viewer shop")
    viewer = await make_api_key(database, shop.id, Role.VIEWER)
    with live_server.client(headers=_bearer(viewer)) as api:
        response = api.get(USAGE)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    # The refusal is itself a request the key made.
    [call] = await _wait_for_calls(database, shop.id, 1)
    assert (call.route, call.status) == (USAGE, 403)


def test_the_route_is_documented_in_openapi(live_server: LiveServer) -> None:
    with live_server.client() as client:
        document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"][USAGE]["get"]
    assert {"from", "to", "timezone", "api_key_id"} <= {p["name"] for p in operation["parameters"]}
    assert {"200", "401", "403", "422"} <= set(operation["responses"])


async def test_the_usage_log_purge_removes_rows_past_twelve_months(database: Database) -> None:
    shop, _ = await make_organisation(database, name="Old shop")
    now = datetime.now(UTC)
    limit = MAXIMUM_AGE[Retention.USAGE_LOG]
    await _insert(database, shop.id, route="/old", created_at=now - limit - timedelta(days=1))
    await _insert(database, shop.id, route="/recent", created_at=now - limit + timedelta(days=1))
    report = await purge.run(database, as_of=now)
    assert any(r.table == "api_usage_log" and r.rows == 1 for r in report.removals)
    assert [call.route for call in await _calls(database, shop.id)] == ["/recent"]


async def test_a_database_error_delays_the_log_but_fails_no_request_and_loses_no_row(
    live_server: LiveServer, database: Database
) -> None:
    shop, key = await make_organisation_with_key(database, name="Unlucky shop")
    recorder: ApiUsageRecorder = live_server.app.state.api_usage  # type: ignore[attr-defined]
    failures = recorder.failed_flushes
    async with database.transaction() as session:
        await session.execute(text("ALTER TABLE api_usage_log RENAME TO api_usage_log_away"))
    try:
        with live_server.client(headers=_bearer(key)) as api:
            for _ in range(3):
                assert api.get("/api/v1/conversations").status_code == 200
        deadline = time.monotonic() + WAIT_SECONDS
        while recorder.failed_flushes == failures and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the writer runs in the server's thread
        assert recorder.failed_flushes > failures
        assert recorder.pending >= 3
    finally:
        async with database.transaction() as session:
            await session.execute(text("ALTER TABLE api_usage_log_away RENAME TO api_usage_log"))
    calls = await _wait_for_calls(database, shop.id, 3)
    assert {call.status for call in calls} == {200}


def _call(organisation_id: uuid.UUID, n: int) -> Call:
    return Call(organisation_id, uuid7(), "GET", f"/api/v1/r{n}", 200, 1.0, datetime.now(UTC))


async def test_stopping_writes_what_is_queued(database: Database) -> None:
    shop, _ = await make_organisation(database, name="Stopping shop")
    recorder = ApiUsageRecorder(interval=3600)  # only the stop writes
    await recorder.start(database)
    for n in range(3):
        recorder.record(_call(shop.id, n))
    await recorder.stop()
    assert sorted(call.route for call in await _calls(database, shop.id)) == [
        "/api/v1/r0",
        "/api/v1/r1",
        "/api/v1/r2",
    ]
    assert (recorder.written, recorder.pending, recorder.dropped) == (3, 0, 0)


async def test_a_full_queue_drops_and_counts_rather_than_waits(database: Database) -> None:
    shop, _ = await make_organisation(database, name="Busy shop")
    recorder = ApiUsageRecorder(limit=2, interval=3600)
    for n in range(5):
        recorder.record(_call(shop.id, n))
    assert (recorder.pending, recorder.dropped) == (2, 3)
    await recorder.start(database)
    await recorder.stop()
    assert sorted(call.route for call in await _calls(database, shop.id)) == [
        "/api/v1/r0",
        "/api/v1/r1",
    ]


async def test_the_api_keys_page_shows_the_use_of_each_key(
    live_server: LiveServer, database: Database
) -> None:
    shop, owner = await make_organisation(database, name="Page shop")
    key = await make_api_key(database, shop.id)
    with live_server.client(headers=_bearer(key)) as api:
        assert api.get("/api/v1/conversations").status_code == 200
    await _wait_for_calls(database, shop.id, 1)
    async with database.transaction() as session:
        await session.execute(delete(ApiKey).where(ApiKey.organisation_id == shop.id))
    with signed_in(live_server.url, owner) as browser:
        page = browser.get("/settings/api-keys")
    assert page.status_code == 200
    assert "Use in the last 28 days" in page.text
    assert "GET /api/v1/conversations" in page.text.replace("<wbr>", "")
    assert "deleted key" in page.text
