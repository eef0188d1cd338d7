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
import collections
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cybergine.accounts.models import Role
from cybergine.accounts.service import api_keys
from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.conversations.models import Channel, Direction
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.demo import seed_demo
from tests.support.conversations import (
    make_attachment,
    make_conversation,
    make_customer,
    make_message,
)
from tests.support.factories import add_member
from tests.support.processes import VENV_BIN, clean_env, start_serve
from tests.support.server import free_port
from tests.web.schemathesis_hooks import HARNESS_KEY_ID_ENV, WIDGET_KEY_ENV

pytestmark = pytest.mark.slow  # the API fuzzed for minutes, against `cybergine serve`

# Wall-clock budget of the fuzzer itself; CI runs the whole suite on two cores.
FUZZ_SECONDS = int(os.environ.get("CYBERGINE_TEST_FUZZ_SECONDS", "150"))
# The web chat API has four operations, and its long poll holds a request up to 25 s.
WIDGET_FUZZ_SECONDS = int(os.environ.get("CYBERGINE_TEST_WIDGET_FUZZ_SECONDS", "45"))
# Each run explores anew; a failing run prints its seed, and this replays it.
FUZZ_SEED = os.environ.get("CYBERGINE_TEST_FUZZ_SEED")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    # The same requests without the key, and with a key that is not one: refused (401)?
    "ignored_auth",
    # Not use_after_free: DELETE /api/v1/customers/{id} is an erasure that leaves an
    # anonymised customer behind (its conversations stay), whose export still answers 200.
)
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Harness:
    organisation_id: str
    key: str
    key_id: str


async def _seed(database: Database) -> Harness:
    async with database.transaction() as session:
        demo = await seed_demo(session)
        scope = TenantScope(session, demo.organisation_id)
        created = await api_keys.create_api_key(
            scope, None, name="schemathesis harness", role=Role.OWNER
        )
        for channel in (Channel.WHATSAPP, Channel.WEBCHAT):
            customer = await make_customer(session, demo.organisation_id, channel=channel)
            conversation = await make_conversation(session, demo.organisation_id, customer=customer)
            await make_message(session, conversation, text="Where is my order?")
            reply = await make_message(session, conversation, direction=Direction.OUTBOUND)
            await make_attachment(session, reply, filename="фото.png")
        harness = Harness(str(demo.organisation_id), created.secret, str(created.api_key.id))
    # Someone the fuzzer may demote or remove (the demo owner is the last owner).
    await add_member(database, demo.organisation_id, Role.ADMIN)
    return harness


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


def _server_statuses(log: Path) -> tuple[collections.Counter[int], list[str]]:
    """Every request the server answered, by status, and the errors it logged."""
    statuses: collections.Counter[int] = collections.Counter()
    errors: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "request" and isinstance(entry.get("status"), int):
            statuses[entry["status"]] += 1
        elif entry.get("level") in {"error", "critical"}:
            exception = str(entry.get("exception", "")).strip().splitlines()
            errors.append(f"{entry.get('event')} {entry.get('path', '')}: {exception[-1:]}")
    return statuses, errors


def _fuzz(
    document_url: str,
    headers: dict[str, str],
    workdir: Path,
    *,
    seconds: int,
    hook_env: dict[str, str],
) -> dict[str, object]:
    report = workdir / "report.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCHEMATHESIS_HOOKS": "tests.web.schemathesis_hooks",
        **hook_env,
    }
    command = [str(VENV_BIN / "schemathesis"), "run", document_url]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    command += [
        "--checks",
        ",".join(CHECKS),
        "--max-time",
        str(seconds),
        # One worker thread: with two, hypothesis's ast.parse of a strategy's lambda can run
        # in both threads at once, which CPython 3.11 answers with "SystemError: AST
        # constructor recursion depth mismatch" (its parser's depth counter is shared), a
        # crash of the tool, not of the API, that failed a run.
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--continue-on-failure",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    if FUZZ_SEED:
        command += ["--seed", FUZZ_SEED]
    # Its own working directory, where _hand_over_ids wrote its schemathesis.toml.
    result = subprocess.run(
        command,
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 180,
        check=False,
    )
    (workdir / "schemathesis.out").write_text(result.stdout + result.stderr)
    sys.stdout.write(result.stdout[-20000:])
    assert report.exists(), f"schemathesis wrote no report:\n{result.stderr[-4000:]}"
    document: dict[str, object] = json.loads(report.read_text())
    return document


@pytest.mark.timeout(FUZZ_SECONDS + 300)
async def test_schemathesis_finds_no_server_error_and_nothing_undocumented(
    database: Database,
    database_url: str,
    key_env: dict[str, str],
    graph: GraphSimulator,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    harness = await _seed(database)
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
            _fuzz,
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

    statuses, errors = _server_statuses(log)
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    figures = (
        f"schemathesis: the server answered {sum(statuses.values())} requests in {elapsed:.0f} s "
        f"(seed {report['seed']}), {server_errors} answered 5xx; "
        f"by status {dict(sorted(statuses.items()))}"
    )
    record_property("figures", figures)
    print(f"\n{figures}")
    assert still.status_code == 200, "the harness key stopped working during the run"
    assert report["complete"], report
    assert report["operations"]["tested"] == report["operations"]["total"], report
    assert report["failures"] == [], json.dumps(report["failures"], indent=2)
    assert report["errors"] == [], report["errors"]
    assert server_errors == 0, "\n".join(errors[:20])
    assert errors == []


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
    harness = await _seed(database)
    env = clean_env(
        CYBERGINE_DATABASE_URL=database_url,
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        CYBERGINE_LOG_LEVEL="INFO",
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
            _fuzz,
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

    statuses, errors = _server_statuses(log)
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    figures = (
        f"schemathesis (web chat): the server answered {sum(statuses.values())} requests in "
        f"{elapsed:.0f} s (seed {report['seed']}), {server_errors} answered 5xx; "
        f"by status {dict(sorted(statuses.items()))}"
    )
    record_property("figures", figures)
    print(f"\n{figures}")
    assert report["complete"], report
    assert report["operations"]["tested"] == report["operations"]["total"] == 4, report
    assert report["failures"] == [], json.dumps(report["failures"], indent=2)
    assert report["errors"] == [], report["errors"]
    assert server_errors == 0, "\n".join(errors[:20])
    assert errors == []
