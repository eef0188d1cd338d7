"""SIGTERM to ``cybergine serve``: ``/readyz`` answers 503 while it drains, then it stops
accepting, answers the widget's long poll at once, closes widget sockets with 1012
("service restart"), lets a request in flight finish, and cuts off one that outlives
CYBERGINE_SHUTDOWN_TIMEOUT_SECONDS."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from cybergine.db.engine import Database
from tests.support.factories import make_organisation_with_key
from tests.support.processes import clean_env, start_serve, wait_until
from tests.support.server import free_port

pytestmark = pytest.mark.slow  # `cybergine serve` as a process, stopped mid-request

SHOP = "https://shop.example"


def _env(url: str, key_env: dict[str, str], tmp_path: Path, **settings: str) -> dict[str, str]:
    return clean_env(
        CYBERGINE_DATABASE_URL=url,
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        CYBERGINE_WIDGET_LONG_POLL_SECONDS="120",  # far longer than any wait below
        **key_env,
        **settings,
    )


def _visitor(base: str, key: str) -> str:
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}) as api:
        created = api.post("/api/v1/assistants", json={"name": "Mia", "allowed_origins": [SHOP]})
        assert created.status_code == 201, created.text
        started = api.post(
            "/widget/v1/session",
            json={"widget_key": created.json()["widget_key"]},
            headers={"Origin": SHOP},
        )
    assert started.status_code == 200, started.text
    token: str = started.json()["visitor_token"]
    return token


def _headers(port: int, token: str) -> str:
    return (
        f"Host: 127.0.0.1:{port}\r\nOrigin: {SHOP}\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n"
    )


def _request(port: int, data: str | bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(data.encode() if isinstance(data, str) else data)
    return sock


def _start_message(port: int, token: str, body: bytes) -> socket.socket:
    """A widget message whose body is only partly sent: a request in flight."""
    head = (
        f"POST /widget/v1/messages HTTP/1.1\r\n{_headers(port, token)}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return _request(port, head.encode() + body[:10])


def _response(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _close_code(widget: ClientConnection) -> int | None:
    """Reads frames until the server closes the socket; the code it closed with."""
    try:
        while True:
            widget.recv(timeout=20)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


async def test_sigterm_drains_then_finishes_what_is_in_flight(
    database: Database, database_url: str, key_env: dict[str, str], tmp_path: Path
) -> None:
    _, key = await make_organisation_with_key(database)
    words = f"still there? {uuid.uuid4().hex}"
    _drain(key, words, database_url, key_env, tmp_path)
    async with database.transaction() as session:
        stored = await session.scalar(
            text("SELECT count(*) FROM messages WHERE text = :t"), {"t": words}
        )
    assert stored == 1  # the request in flight was served to the end


def _drain(
    key: str, words: str, database_url: str, key_env: dict[str, str], tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    env = _env(
        database_url,
        key_env,
        tmp_path,
        CYBERGINE_SHUTDOWN_DRAIN_SECONDS="120",  # ended by the second SIGTERM
        CYBERGINE_SHUTDOWN_TIMEOUT_SECONDS="60",
    )
    server = start_serve(port, env, log)
    sockets = contextlib.ExitStack()
    try:
        token = _visitor(base, key)
        widget = sockets.enter_context(
            connect(
                f"ws://127.0.0.1:{port}/widget/v1/socket?token={token}",
                origin=Origin(SHOP),
                open_timeout=5,
            )
        )
        # Raw connections made before the first SIGTERM: the server accepts them before
        # the probes below (the listen queue is first in, first out).
        poll = _request(port, f"GET /widget/v1/events HTTP/1.1\r\n{_headers(port, token)}\r\n")
        body = json.dumps({"text": words, "client_id": uuid.uuid4().hex}).encode()
        in_flight = _start_message(port, token, body)

        # First SIGTERM: out of rotation, still serving.
        os.kill(server.pid, signal.SIGTERM)
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 503, 20, "readyz 503")
        assert httpx.get(f"{base}/readyz").json()["server"] == "draining"
        assert httpx.get(f"{base}/healthz").status_code == 200
        widget.send('{"type":"ping"}')
        assert json.loads(widget.recv(timeout=10)) == {"type": "pong"}
        assert server.poll() is None

        # Second SIGTERM: the drain wait ends; the server stops accepting.
        stopping = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        code = _close_code(widget)
        socket_closed = time.monotonic() - stopping
        assert code == 1012
        answered = _response(poll)
        poll_answered = time.monotonic() - stopping
        head, _, payload = answered.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), answered[:300]
        assert json.loads(payload)["events"] == []
        wait_until(lambda: _refused(port), 20, "new connections refused")
        assert server.poll() is None, "the server left before its request in flight finished"

        in_flight.sendall(body[10:])
        answer = _response(in_flight)
        assert answer.startswith(b"HTTP/1.1 20"), answer[:300]
        assert server.wait(timeout=30) == 0, log.read_text()[-3000:]
        exited = time.monotonic() - stopping
    finally:
        sockets.close()
        _stop(server)
    print(
        f"after the drain: socket closed {socket_closed:.2f} s, long poll answered "
        f"{poll_answered:.2f} s, exit {exited:.2f} s (in-flight request finished first)"
    )


async def test_a_request_outliving_the_shutdown_timeout_is_cut_off(
    database: Database, database_url: str, key_env: dict[str, str], tmp_path: Path
) -> None:
    _, key = await make_organisation_with_key(database)
    _cut_off(key, database_url, key_env, tmp_path)


def _cut_off(key: str, database_url: str, key_env: dict[str, str], tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    env = _env(database_url, key_env, tmp_path, CYBERGINE_SHUTDOWN_TIMEOUT_SECONDS="2")
    server = start_serve(port, env, log)
    try:
        token = _visitor(f"http://127.0.0.1:{port}", key)
        stuck = _start_message(port, token, b'{"text": "never finished"}')
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").is_success, 10, "up")
        stopping = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, log.read_text()[-3000:]
        exited = time.monotonic() - stopping
        stuck.close()
    finally:
        _stop(server)
    assert 2 <= exited < 10, exited
    print(f"exit {exited:.2f} s after SIGTERM with a request stuck and a 2 s timeout")
