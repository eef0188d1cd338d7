"""schemathesis over the web chat API (``/widget/v1/openapi.json``), against a real
`cybergine serve`, as a browser on the shop's site would call it (``fuzzing.py`` says how
the fuzzer runs). A file of its own, so the two fuzz runs can go to different workers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cybergine.db.engine import Database
from tests.support.processes import clean_env, start_serve
from tests.support.server import free_port
from tests.web.fuzzing import check_run, run_schemathesis, seed_harness
from tests.web.schemathesis_hooks import WIDGET_KEY_ENV

pytestmark = pytest.mark.slow  # the web chat API fuzzed against `cybergine serve`

# The web chat API has five operations (the rating among them): 12 s took them through
# coverage and fuzzing on an idle machine, 15 leaves room for a busy one.
WIDGET_FUZZ_SECONDS = int(os.environ.get("CYBERGINE_TEST_WIDGET_FUZZ_SECONDS", "15"))


@pytest.mark.timeout(WIDGET_FUZZ_SECONDS + 300)
async def test_schemathesis_finds_no_server_error_in_the_web_chat_api(
    database: Database,
    database_url: str,
    key_env: dict[str, str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """The widget's API (``/widget/v1/openapi.json``), as a browser on the shop's site
    would call it: from an allowed origin (the platform's own, which shows the demo
    store), with a real visitor's token, and the demo assistant's widget key in half of
    the sessions it starts."""
    harness = await seed_harness(database)
    env = clean_env(
        CYBERGINE_DATABASE_URL=database_url,
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        CYBERGINE_LOG_LEVEL="INFO",
        # A long poll that holds for seconds, not 25: the budget goes to requests.
        CYBERGINE_WIDGET_LONG_POLL_SECONDS="2",
        **key_env,
    )
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    server = await asyncio.to_thread(start_serve, port, env, log)
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            assistant = (
                await client.get(
                    "/api/v1/assistants", headers={"authorization": f"Bearer {harness.key}"}
                )
            ).json()[0]
            session = await client.post(
                "/widget/v1/session",
                json={"widget_key": assistant["widget_key"]},
                headers={"origin": url},
            )
            session.raise_for_status()
        report = await asyncio.to_thread(
            run_schemathesis,
            f"{url}/widget/v1/openapi.json",
            {"Origin": url, "Authorization": f"Bearer {session.json()['visitor_token']}"},
            tmp_path,
            seconds=WIDGET_FUZZ_SECONDS,
            hook_env={WIDGET_KEY_ENV: assistant["widget_key"]},
        )
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.wait, 30)
    elapsed = time.monotonic() - started

    operations = report["operations"]
    assert isinstance(operations, dict)
    assert operations["total"] == 5, report
    check_run(
        report,
        log,
        title="schemathesis (web chat)",
        elapsed=elapsed,
        record_property=record_property,
    )
