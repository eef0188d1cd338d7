"""What both schemathesis tests share: the organisation they fuzz, the fuzzer's command
line, and the reading of the server's access log.

Each test runs a real `cybergine serve` and the schemathesis CLI against it for a fixed
time budget through every phase (examples, coverage, fuzzing, stateful); a failing run
prints its seed, and ``CYBERGINE_TEST_FUZZ_SEED`` replays it.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cybergine.accounts.models import Role
from cybergine.accounts.service import api_keys
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
from tests.support.processes import VENV_BIN

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


async def seed_harness(database: Database) -> Harness:
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


def server_statuses(log: Path) -> tuple[collections.Counter[int], list[str]]:
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
            # The raising line and the error: enough to find the bug from CI's output.
            exception = str(entry.get("exception", "")).strip().splitlines()[-3:]
            errors.append(f"{entry.get('event')} {entry.get('path', '')}: {exception}")
    return statuses, errors


def check_run(
    report: dict[str, object],
    log: Path,
    *,
    title: str,
    elapsed: float,
    record_property: Callable[[str, object], None],
) -> None:
    """Prints and records the run's figures from the server's log, then asserts the run
    was whole and clean: every operation tested, no finding, no server error."""
    statuses, errors = server_statuses(log)
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    figures = (
        f"{title}: the server answered {sum(statuses.values())} requests in {elapsed:.0f} s "
        f"(seed {report['seed']}), {server_errors} answered 5xx; "
        f"by status {dict(sorted(statuses.items()))}"
    )
    record_property("figures", figures)
    print(f"\n{figures}")
    operations = report["operations"]
    assert report["complete"], report
    assert isinstance(operations, dict)
    assert operations["tested"] == operations["total"], report
    # With the server's own account of its errors: the report names the operation only.
    assert report["failures"] == [], "\n".join(
        [json.dumps(report["failures"], indent=2), *errors[:20]]
    )
    assert report["errors"] == [], report["errors"]
    assert server_errors == 0, "\n".join(errors[:20])
    assert errors == []


def run_schemathesis(
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
