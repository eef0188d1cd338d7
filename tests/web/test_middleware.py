"""Security headers, request ids, body limits and problem+json on every response."""

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from cybergine.app import create_app
from cybergine.errors import Conflict
from cybergine.settings import Settings
from tests.support.server import LiveServer

LIMIT = 4096


class Item(BaseModel):
    name: str
    quantity: int


def _app_with_probe_routes(settings: Settings) -> FastAPI:
    app = create_app(
        settings.model_copy(update={"max_request_body_bytes": LIMIT}), run_worker=False
    )

    @app.post("/api/v1/probe/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.post("/api/v1/probe/items")
    async def items(item: Item) -> Item:
        return item

    @app.get("/api/v1/probe/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    @app.get("/api/v1/probe/conflict")
    async def conflict() -> None:
        raise Conflict("Already there.", existing_id="abc")

    @app.get("/api/v1/probe/log")
    async def log_something() -> dict[str, str]:
        logging.getLogger("cybergine.probe").warning("inside the request")
        return {"ok": "yes"}

    return app


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(_app_with_probe_routes(settings)) as live:
        yield live


SECURITY_HEADERS = {
    "content-security-policy",
    "x-content-type-options",
    "referrer-policy",
    "x-frame-options",
}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/nowhere", 404),
        ("DELETE", "/healthz", 405),
        ("GET", "/api/v1/probe/crash", 500),
    ],
)
def test_security_headers_on_every_response(
    server: LiveServer, method: str, path: str, status: int
) -> None:
    with server.client() as client:
        response = client.request(method, path)
    assert response.status_code == status
    assert set(response.headers) >= SECURITY_HEADERS
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/v1/nowhere", 404), ("/api/v1/probe/crash", 500), ("/api/v1/probe/conflict", 409)],
)
def test_errors_are_problem_json_with_the_request_id(
    server: LiveServer, path: str, status: int
) -> None:
    with server.client() as client:
        response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert "boom" not in response.text  # internals never reach the client


def test_domain_errors_carry_their_type_and_extra_fields(server: LiveServer) -> None:
    with server.client() as client:
        body = client.get("/api/v1/probe/conflict").json()
    assert body["type"] == "urn:cybergine:problem:conflict"
    assert body["detail"] == "Already there."
    assert body["existing_id"] == "abc"


def test_validation_errors_name_the_bad_fields(server: LiveServer) -> None:
    with server.client() as client:
        response = client.post("/api/v1/probe/items", json={"name": "x", "quantity": "many"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert error["location"] == ["body", "quantity"]


def test_malformed_json_is_a_clear_client_error(server: LiveServer) -> None:
    with server.client() as client:
        response = client.post(
            "/api/v1/probe/items",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_request_id_is_taken_from_the_caller_when_well_formed(server: LiveServer) -> None:
    with server.client() as client:
        response = client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


@pytest.mark.parametrize("hostile", ["a" * 300, "<script>alert(1)</script>", "id with spaces"])
def test_hostile_request_ids_are_replaced(server: LiveServer, hostile: str) -> None:
    with server.client() as client:
        response = client.get("/healthz", headers={"x-request-id": hostile})
    assert response.headers["x-request-id"] != hostile
    assert len(response.headers["x-request-id"]) == 32


def test_body_over_the_limit_by_content_length_is_refused(server: LiveServer) -> None:
    with server.client() as client:
        response = client.post("/api/v1/probe/echo", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert str(LIMIT) in response.json()["detail"]


def test_streamed_body_over_the_limit_is_refused(server: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 1024

    with server.client() as client:
        response = client.post("/api/v1/probe/echo", content=chunks())  # chunked: no Content-Length
    assert response.status_code == 413


def test_body_within_the_limit_is_read_whole(server: LiveServer) -> None:
    with server.client() as client:
        response = client.post("/api/v1/probe/echo", content=b"z" * LIMIT)
    assert response.status_code == 200
    assert response.json() == {"received": LIMIT}


def test_every_log_line_of_a_request_carries_its_id(
    server: LiveServer, capfd: pytest.CaptureFixture[str]
) -> None:
    from cybergine.logging import configure_logging

    configure_logging("INFO", "json")
    try:
        with server.client() as client:
            client.get("/api/v1/probe/log", headers={"x-request-id": "trace-me-42"})
        lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line]
    finally:
        configure_logging("WARNING", "console")
    mine = [line for line in lines if line.get("request_id") == "trace-me-42"]
    events = {line["event"] for line in mine}
    assert {"inside the request", "request"} <= events
    access = next(line for line in mine if line["event"] == "request")
    assert access["status"] == 200
    assert access["path"] == "/api/v1/probe/log"
