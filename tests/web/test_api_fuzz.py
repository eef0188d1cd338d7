"""schemathesis over every operation of the API, against a real `cybergine serve`.

The demo organisation (an assistant, its FAQ, a WhatsApp number) plus a conversation with
messages and an attachment give the fuzzer something to find; it works with an owner key
of that organisation which it cannot revoke (``schemathesis_hooks.py`` says how and why).
It runs for a fixed time budget (``FUZZ_SECONDS``) through every phase (examples, coverage,
fuzzing, stateful), and must find no server error (counted from the server's own access
log, so the requests of every check count), no status or content type the OpenAPI
document does not promise, no answer that breaks its schema and no operation that ignores
a missing key.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.db.engine import Database
from tests.support.processes import clean_env, start_serve
from tests.support.server import free_port
from tests.web.fuzzing import Harness, check_run, run_schemathesis, seed_harness
from tests.web.schemathesis_hooks import HARNESS_KEY_ID_ENV

pytestmark = pytest.mark.slow  # the API fuzzed for minutes, against `cybergine serve`

# Wall-clock budget of the fuzzer itself: in `make test`, enough to take every operation
# through every phase (20 s did, with the coverage phase taking 7 s of it on an idle
# machine; 25 leaves room for a busy one), and minutes in `make fuzz`, which CI runs too.
FUZZ_SECONDS = int(os.environ.get("CYBERGINE_TEST_FUZZ_SECONDS", "25"))

# Path parameters the fuzzer is handed real ids for, half of the time (random ids find
# only 404s), and the list that shows them: (parameter, list path, key of its items).
KNOWN_IDS = (
    ("membership_id", "/api/v1/members", None),
    ("invitation_id", "/api/v1/invitations", None),
    ("assistant_id", "/api/v1/assistants", None),
    ("number_id", "/api/v1/channels/whatsapp", None),
    ("document_id", "/api/v1/knowledge/documents", "items"),
    ("qa_id", "/api/v1/knowledge/qa", "items"),
    ("collection_id", "/api/v1/knowledge/collections", None),
    ("conversation_id", "/api/v1/conversations", "items"),
    ("customer_id", "/api/v1/customers", None),
)


def _hand_over_ids(url: str, harness: Harness, workdir: Path) -> None:
    """Make what only the API makes (an uploaded file, an invitation), then write the ids
    of everything the organisation has into the fuzzer's configuration."""
    headers = {"authorization": f"Bearer {harness.key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        client.post(
            "/api/v1/knowledge/documents",
            # A name beyond Latin-1: it has to survive the download's headers.
            files={"file": ("Größentabelle 尺码.txt", b"Sizes run true.", "text/plain")},
        ).raise_for_status()
        client.post(
            "/api/v1/invitations", json={"email": "new@example.com", "role": "agent"}
        ).raise_for_status()
        known: dict[str, list[str]] = {}
        for parameter, path, key in KNOWN_IDS:
            answer = client.get(path).raise_for_status().json()
            known[parameter] = [str(item["id"]) for item in (answer[key] if key else answer)]
        known["message_id"] = [
            str(message["id"])
            for conversation in known["conversation_id"]
            for message in client.get(f"/api/v1/conversations/{conversation}/messages")
            .raise_for_status()
            .json()["items"]
        ]
    lines = ["[parameters]"]
    lines += [
        f'"path.{parameter}" = {{ dictionary = "{parameter}", probability = 0.5 }}'
        for parameter in known
    ]
    for parameter, ids in known.items():
        assert ids, f"the organisation has no {parameter} to hand over"
        lines += [f"[dictionaries.{parameter}]", f"values = {json.dumps(ids)}"]
    (workdir / "schemathesis.toml").write_text("\n".join(lines) + "\n")


@pytest.mark.timeout(FUZZ_SECONDS + 300)
async def test_schemathesis_finds_no_server_error_and_nothing_undocumented(
    database: Database,
    database_url: str,
    key_env: dict[str, str],
    graph: GraphSimulator,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    harness = await seed_harness(database)
    env = clean_env(
        CYBERGINE_DATABASE_URL=database_url,
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        CYBERGINE_LOG_LEVEL="INFO",
        # Connecting a WhatsApp number asks Meta first: the simulator answers (an
        # unreachable Meta would be a 502 the fuzzer cannot tell from a server error).
        CYBERGINE_WHATSAPP_GRAPH_URL=graph.base_url,
        **key_env,
    )
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    server = await asyncio.to_thread(start_serve, port, env, log)
    started = time.monotonic()
    try:
        await asyncio.to_thread(_hand_over_ids, url, harness, tmp_path)
        report = await asyncio.to_thread(
            run_schemathesis,
            f"{url}/api/v1/openapi.json",
            {"Authorization": f"Bearer {harness.key}"},
            tmp_path,
            seconds=FUZZ_SECONDS,
            hook_env={HARNESS_KEY_ID_ENV: harness.key_id},
        )
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            still = await client.get(
                "/api/v1/organisation", headers={"authorization": f"Bearer {harness.key}"}
            )
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.wait, 30)
    elapsed = time.monotonic() - started

    assert still.status_code == 200, "the harness key stopped working during the run"
    check_run(report, log, title="schemathesis", elapsed=elapsed, record_property=record_property)
