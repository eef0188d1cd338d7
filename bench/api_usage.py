"""The API usage log's cost on the request path: requests per second of an API-key GET
with and without the log's middleware, in the same run.

One embedded PostgreSQL in a temporary directory, migrated to head, holds one
organisation with an API key. Two copies of the app run side by side, each a Uvicorn
process of its own on the same database (as `cybergine serve`, no in-process worker):
one as shipped, one with ``ApiUsageMiddleware`` taken out of its middleware (its
recorder then never gets a call). A load generator in this process sends
``GET /api/v1/conversations?limit=20`` with the key, ``--concurrency`` at a time, for
``--seconds`` per run, alternating between the two apps for ``--rounds`` rounds, so a
change of the machine's load falls on both. Prints each run, the median of each side,
the median of the rounds' ratios (each round's two runs are neighbours in time), and
checks that every request made to the logging app was written.
Goal: the log costs under 5 % of the throughput.

On a busy machine the two sides' runs differ by more than the log costs, so the
same run also measures the log's two parts alone: the middleware and the queue
(``--calls`` requests through ``ApiUsageMiddleware`` around an app that answers at
once, against the bare app), and the writer (``--calls`` calls written by
``ApiUsageRecorder.flush`` in batches): microseconds per request, of the web
process and of the database.

Usage: .venv/bin/python bench/api_usage.py [--seconds 2] [--rounds 15] [--concurrency 8]
       [--calls 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import platform as host
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cybergine.accounts.auth import API_KEY_CALL
from cybergine.accounts.models import Role
from cybergine.accounts.principal import Principal
from cybergine.accounts.service import api_keys, users
from cybergine.analytics.api_usage import ApiUsageMiddleware, ApiUsageRecorder
from cybergine.db import embedded, migrate
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.privacy import keys

ROUTE = "/api/v1/conversations?limit=20"
# The template the parts alone are logged under (not counted with the servers' rows).
PARTS_ROUTE = "/api/v1/bench/parts"
SERVE = """
import sys
import uvicorn
from cybergine.analytics.api_usage import ApiUsageMiddleware
from cybergine.app import create_app
from cybergine.settings import load_settings

app = create_app(load_settings(), run_worker=False)
if sys.argv[2] == "without":
    app.user_middleware = [m for m in app.user_middleware if m.cls is not ApiUsageMiddleware]
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def make_key(url: str) -> tuple[str, uuid.UUID, uuid.UUID]:
    database = Database(url, pool_size=2)
    try:
        async with database.transaction() as session:
            _, organisation = await users.sign_up(
                session,
                email="bench@example.com",
                name="Bench",
                password=secrets.token_urlsafe(16),
                organisation_name="Bench shop",
            )
            created = await api_keys.create_api_key(
                TenantScope(session, organisation.id), None, name="bench", role=Role.OWNER
            )
            return created.secret, created.api_key.id, organisation.id
    finally:
        await database.dispose()


async def logged_rows(url: str) -> int:
    database = Database(url, pool_size=1)
    try:
        async with database.transaction() as session:
            return int(
                await session.scalar(
                    text("SELECT count(*) FROM api_usage_log WHERE route <> :parts"),
                    {"parts": PARTS_ROUTE},
                )
                or 0
            )
    finally:
        await database.dispose()


def serve(variant: str, env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port), variant], env=env, start_new_session=True
    )
    atexit.register(_stop, process)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the {variant} server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return base, process
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"the {variant} server did not start")


async def parts(url: str, key_id: uuid.UUID, organisation_id: uuid.UUID, calls: int) -> None:
    """The middleware's and the writer's own cost per request, measured alone."""
    recorder = ApiUsageRecorder(limit=calls + 1, interval=3600)
    principal = Principal(organisation_id, Role.OWNER, api_key_id=key_id)
    route = type("Route", (), {"path_format": PARTS_ROUTE})()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"][API_KEY_CALL] = (principal, route)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        pass

    async def through(handler: ASGIApp) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            scope: Scope = {"type": "http", "path": PARTS_ROUTE, "method": "GET", "state": {}}
            await handler(scope, receive, send)
        return (time.perf_counter() - started) / calls * 1e6

    bare = min([await through(app) for _ in range(3)])
    recorder = ApiUsageRecorder(limit=calls + 1, interval=3600)
    logged = ApiUsageMiddleware(app, recorder=recorder)
    with_log = await through(logged)
    print(
        f"middleware and queue: {with_log - bare:.1f} us per request"
        f" ({with_log:.1f} us with, {bare:.1f} us without, an app that answers at once)"
    )
    database = Database(url, pool_size=2)
    try:
        recorder._database = database  # the writer alone, without its timer
        started = time.perf_counter()
        written = await recorder.flush()
        elapsed = time.perf_counter() - started
    finally:
        await database.dispose()
    print(
        f"writer: {written} calls in {elapsed:.2f} s, {elapsed / written * 1e6:.0f} us per"
        f" request ({written / elapsed:,.0f} calls/s, batches of {recorder.batch})"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


async def load(base: str, key: str, seconds: float, concurrency: int) -> tuple[float, int]:
    """Requests per second over ``seconds``, and how many were made (all must be 200)."""
    done = 0
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(concurrency):  # warm the connections
            assert (await client.get(ROUTE)).status_code == 200
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                response = await client.get(ROUTE)
                assert response.status_code == 200, response.text
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return done / elapsed, done + concurrency


def main(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="cybergine-bench-api-usage-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    server_keys = keys.ServerKeys(
        secret_key=keys.generate_secret_key().encode(),
        encryption_keys=(keys.generate_fernet_key(),),
    )
    keys.install(server_keys)
    url = embedded.start(workdir / "data").url
    migrate.upgrade(url)
    key, key_id, organisation_id = asyncio.run(make_key(url))
    asyncio.run(parts(url, key_id, organisation_id, args.calls))
    env = {
        **os.environ,
        "CYBERGINE_DATABASE_URL": url,
        "CYBERGINE_SECRET_KEY": server_keys.secret_key.decode(),
        "CYBERGINE_ENCRYPTION_KEYS": ",".join(server_keys.encryption_keys),
        "CYBERGINE_LOG_LEVEL": "WARNING",
        "CYBERGINE_DB_POOL_SIZE": "10",
    }
    servers = {variant: serve(variant, env) for variant in ("without", "with")}
    rates: dict[str, list[float]] = {"without": [], "with": []}
    made_with_log = 0
    print(f"GET {ROUTE}, {args.concurrency} at a time, {args.seconds:.0f} s per run")
    for round_number in range(args.rounds):
        order = ("without", "with") if round_number % 2 == 0 else ("with", "without")
        for variant in order:
            rate, made = asyncio.run(load(servers[variant][0], key, args.seconds, args.concurrency))
            rates[variant].append(rate)
            if variant == "with":
                made_with_log += made
            print(f"  round {round_number + 1}, {variant:>7} the log: {rate:7.1f} requests/s")
    with_process = servers["with"][1]
    _stop(with_process)  # its shutdown writes what is still queued
    for _, process in servers.values():
        _stop(process)
    rows = asyncio.run(logged_rows(url))
    without, with_log = statistics.median(rates["without"]), statistics.median(rates["with"])
    # Each round's two runs are neighbours in time: their ratio cancels the machine's drift.
    ratios = [w / wo for w, wo in zip(rates["with"], rates["without"], strict=True)]
    cost = 1 - statistics.median(ratios)
    print(f"\nmedian without the log: {without:7.1f} requests/s")
    print(f"median with the log:    {with_log:7.1f} requests/s")
    print(
        f"throughput lost to the log: {cost:+.1%} (median of the rounds' ratios;"
        f" rounds range {1 - max(ratios):+.1%} to {1 - min(ratios):+.1%})"
    )
    print(f"rows logged: {rows} of {made_with_log} requests made to the logging app")
    print(
        f"host: {host.node()} {host.machine()}, {os.cpu_count()} cores; load average before"
        f" the run {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}"
    )
    ok = rows == made_with_log and cost < 0.05
    print("goal (< 5 % lost, every request logged):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per run")
    parser.add_argument("--rounds", type=int, default=15, help="runs of each app")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--calls", type=int, default=100_000, help="for the parts alone")
    sys.exit(main(parser.parse_args()))
