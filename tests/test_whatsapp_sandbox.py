"""`make run`'s WhatsApp sandbox: the demo shop answers a customer typing at /dev/whatsapp,
through the Graph API simulator in the server's process and real signed webhooks."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from cybergine.app import create_app
from cybergine.settings import Settings
from tests.support.processes import clean_env, run_cli, start_serve
from tests.support.server import LiveServer, free_port


def _wait_for_thread(client: httpx.Client, needle: str, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while True:
        thread = client.get("/dev/whatsapp/thread").text
        if needle in thread:
            return thread
        assert time.monotonic() < deadline, f"{needle!r} never appeared:\n{thread}"
        time.sleep(0.1)


@pytest.mark.slow  # `cybergine demo` and `cybergine serve` as processes
def test_the_demo_shop_answers_in_the_sandbox(tmp_path: Path) -> None:
    env = clean_env(CYBERGINE_DATA_DIR=str(tmp_path / "data"))
    run_cli("demo", env=env)
    port = free_port()
    server = start_serve(port, env, tmp_path / "serve.log", "--whatsapp-simulator")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            page = client.get("/dev/whatsapp")
            assert page.status_code == 200
            # The team answers from the inbox, not through the API.
            assert 'href="/inbox"' in page.text
            assert "/api/v1" not in page.text
            match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert match
            token = match.group(1)

            said = client.post(
                "/dev/whatsapp/messages",
                data={"csrf_token": token, "text": "What is your return policy?"},
            )
            assert said.status_code == 200
            thread = _wait_for_thread(client, "within 30 days of delivery")
            assert "AI assistant" in thread

            hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
            client.post("/dev/whatsapp/messages", data={"csrf_token": token, "text": hostile})
            thread = _wait_for_thread(client, "Talk to a person")
            assert "<script>" not in thread
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in thread

            tapped = client.post(
                "/dev/whatsapp/taps",
                data={
                    "csrf_token": token,
                    "button_id": "cybergine:handoff",
                    "title": "Talk to a person",
                },
            )
            assert tapped.status_code == 200
            _wait_for_thread(client, "person from our team")

            forged = client.post(
                "/dev/whatsapp/messages", data={"csrf_token": "forged", "text": "hello"}
            )
            assert forged.status_code == 403
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_without_the_simulator_there_is_no_sandbox(settings: Settings) -> None:
    with LiveServer(create_app(settings, run_worker=False)) as server, server.client() as client:
        assert client.get("/dev/whatsapp").status_code == 404
        assert client.get("/dev/whatsapp/thread").status_code == 404
