"""Widget WebSockets: idle sockets per web process, and real-time fan-out across processes.

Everything runs on this machine, on an embedded PostgreSQL in a temporary directory, with
``CYBERGINE_EMBEDDED_WORKER=false`` (no worker runs, so no reply job adds messages or load).
Visitor tokens are minted here with the servers' secret key (set through
``CYBERGINE_SECRET_KEY``), as ``POST /widget/v1/session`` would, since that route allows 30
sessions a minute per IP address. It prints:

1. idle sockets: one ``cybergine serve``; N widget sockets (distinct visitors, permessage-
   deflate offered as browsers do) opened from separate client processes (asyncio on uvloop,
   the ``websockets`` client), then held idle for a while with ``{"type":"ping"}`` every
   25 s: sockets established (by the clients, and as the server's TCP table sees them),
   connect failures, sockets dropped while held, and the server's RSS (the process and any
   children) fresh, with zero sockets after a warm-up (the baseline), with N sockets, and
   after they closed; RSS per socket; and how long the server keeps a client waiting, from
   one more socket that pings every 50 ms (an event-loop stall shows there);
2. fan-out: a second ``cybergine serve`` (B) on the same data directory; M visitors, each
   with a conversation; for each, one message committed through web process A (a visitor
   message, ``POST /widget/v1/messages``, then an agent message, ``POST
   /api/v1/conversations/{id}/messages``), paced; the time from A's HTTP response (the
   commit is done), and from the request's start, to the message frame on the visitor's
   socket held by B; the same with the socket held by A (the writer's own process) as the
   baseline. Every event goes through PostgreSQL NOTIFY either way;
3. the CPU each party used in each phase (web processes, PostgreSQL, clients), to show what
   limited the figures, and the errors the web processes logged.

Usage: .venv/bin/python bench/realtime.py [--sockets 5000] [--clients 2] [--hold 30]
       [--visitors 200] [--rate 50] [--no-deflate]
The defaults finish in about three minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform as host
import random
import resource
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from whatsapp import Cpu, CpuMonitor, Latencies, Platform, Processes, tail

ORIGIN = "https://shop.example"
PING_SECONDS = 25.0  # what the widget does; the server drops a socket silent for 60 s
PROBE_SECONDS = 0.05  # the responsiveness probe's ping interval

GOAL_SOCKETS = 5000
GOAL_RSS_MIB = 500.0
GOAL_P99_MS = 50.0

WEB_A, WEB_B, POSTGRES, CLIENTS, SELF = "web A", "web B", "postgres", "clients", "bench"


# --- the socket clients (child processes: `realtime.py --client SPEC`) ------------------


async def client_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Open one widget socket per token, keep them alive with pings until told to close
    (a line on stdin), then close them and report. With ``probe``, one more socket pings
    every PROBE_SECONDS and times the pong: how long the server keeps a client waiting."""
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(spec["concurrency"])
    phase = {"name": "opening"}
    closing = asyncio.Event()
    sockets: list[ClientConnection] = []
    tasks: list[asyncio.Task[None]] = []
    failures: Counter[str] = Counter()
    connect_s: list[float] = []
    count = Counter[str]()
    lag: dict[str, list[float]] = {"opening": [], "holding": []}

    def open_socket(token: str) -> Any:
        return connect(
            f"{spec['url']}?token={token}",
            origin=ORIGIN,  # type: ignore[arg-type]
            compression="deflate" if spec["deflate"] else None,
            ping_interval=None,  # the server pings; the widget sends its own pings
            open_timeout=60,
            close_timeout=10,
            proxy=None,
        )

    async def reader(ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                count["frames"] += 1
                if '"pong"' in str(raw):
                    count["pongs"] += 1
        if not closing.is_set():
            count["dropped"] += 1

    async def pinger(ws: ClientConnection) -> None:
        # Spread over the interval, as visitors arriving at random would be.
        await asyncio.sleep(random.uniform(0, spec["ping_seconds"]))
        with contextlib.suppress(ConnectionClosed):
            while not closing.is_set():
                await ws.send('{"type":"ping"}')
                count["pings"] += 1
                await asyncio.sleep(spec["ping_seconds"])

    async def probe(ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while not closing.is_set():
                tick = time.perf_counter()
                await ws.send('{"type":"ping"}')
                try:
                    async with asyncio.timeout(10):
                        while '"pong"' not in str(await ws.recv()):
                            pass
                except TimeoutError:
                    pass
                lag[phase["name"]].append(time.perf_counter() - tick)
                await asyncio.sleep(max(0.0, tick + PROBE_SECONDS - time.perf_counter()))

    async def open_one(token: str) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                ws = await open_socket(token)
            except InvalidStatus as exc:
                failures[f"HTTP {exc.response.status_code}"] += 1
                return
            except (OSError, TimeoutError, WebSocketException) as exc:
                failures[type(exc).__name__] += 1
                return
            connect_s.append(time.perf_counter() - started)
        sockets.append(ws)
        tasks.append(asyncio.create_task(reader(ws)))
        tasks.append(asyncio.create_task(pinger(ws)))

    probe_ws: ClientConnection | None = None
    if spec.get("probe"):
        probe_ws = await open_socket(spec["probe"])
        tasks.append(asyncio.create_task(probe(probe_ws)))
    started = time.perf_counter()
    await asyncio.gather(*(open_one(token) for token in spec["tokens"]))
    opened = time.perf_counter() - started
    phase["name"] = "holding"
    print(json.dumps({"established": len(sockets), "failed": sum(failures.values())}), flush=True)

    await loop.run_in_executor(None, sys.stdin.readline)  # "close"
    alive = sum(1 for ws in sockets if ws.state.name == "OPEN")
    closing.set()
    everything = [*sockets, *([probe_ws] if probe_ws else [])]
    await asyncio.gather(*(ws.close() for ws in everything), return_exceptions=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "established": len(sockets),
        "alive_at_close": alive,
        "failures": dict(failures),
        "connect_s": connect_s,
        "open_seconds": opened,
        "lag": lag,
        **{k: count[k] for k in ("frames", "pongs", "pings", "dropped")},
    }


def client_main(spec_path: str) -> None:
    import uvloop

    raise_open_files()
    spec = json.loads(Path(spec_path).read_text())
    result = uvloop.run(client_run(spec))
    Path(spec["out"]).write_text(json.dumps(result))
    print("closed", flush=True)


# --- helpers ----------------------------------------------------------------------------


def raise_open_files() -> int:
    """The soft limit on open files up to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and of its children, MiB."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total / 2**20


def pss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += psutil.Process(pid).memory_full_info().pss
    return total / 2**20


def established(pid: int, port: int) -> int:
    """TCP connections the server process holds on its listening port."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return 0
    return sum(
        1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr[1] == port
    )


def read_line(process: subprocess.Popen[bytes], timeout: float, log: Path) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise SystemExit(f"socket client silent for {timeout:.0f} s\n{tail(log)}")
    line = process.stdout.readline().decode().strip()
    if not line:
        raise SystemExit(f"socket client exited with {process.poll()}\n{tail(log)}")
    return line


def mint_tokens(assistant_id: str, widget_key: str, count: int) -> list[tuple[str, uuid.UUID]]:
    """(token, customer id) of new visitors, signed as the servers sign them."""
    from cybergine.channels.webchat import visitors

    out = []
    for _ in range(count):
        visitor, token = visitors.issue(uuid.UUID(assistant_id), widget_key)
        out.append((token, visitor.customer_id))
    return out


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


# --- phase 1: idle sockets on one web process -------------------------------------------


@dataclass
class Idle:
    asked: int
    clients: int
    established: int = 0
    server_seen: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    open_seconds: float = 0.0
    connect: Latencies | None = None
    dropped: int = 0
    alive_at_close: int = 0
    pings: int = 0
    pongs: int = 0
    held_seconds: float = 0.0
    rss_fresh: float = 0.0
    rss_zero: float = 0.0
    rss_full: float = 0.0
    rss_closed: float = 0.0
    pg_zero: float = 0.0
    pg_full: float = 0.0
    lag: dict[str, Latencies] = field(default_factory=dict)  # the probe's pong times
    settle_seconds: float = 0.0  # from "close" to the server idle again
    close_cpu_seconds: float = 0.0
    cpu_connect: Cpu | None = None
    cpu_hold: Cpu | None = None

    @property
    def per_socket_kib(self) -> float:
        return 1024 * (self.rss_full - self.rss_zero) / max(1, self.established)


def run_clients(
    platform: Platform,
    port: int,
    tokens: list[str],
    *,
    clients: int,
    args: argparse.Namespace,
    name: str,
    probe: str | None = None,
) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    """Start the client processes; they begin connecting at once. The first one also
    opens the responsiveness probe's socket, with the ``probe`` token."""
    procs, outs = [], []
    for i in range(clients):
        out = platform.workdir / f"{name}-{i}.json"
        spec = {
            "url": f"ws://127.0.0.1:{port}/widget/v1/socket",
            "tokens": tokens[i::clients],
            "concurrency": args.connect_concurrency,
            "deflate": not args.no_deflate,
            "ping_seconds": PING_SECONDS,
            "probe": probe if i == 0 else None,
            "out": str(out),
        }
        spec_path = platform.workdir / f"{name}-{i}.spec.json"
        spec_path.write_text(json.dumps(spec))
        procs.append(
            platform.processes.start(
                f"{name}-{i}",
                [sys.executable, str(Path(__file__).resolve()), "--client", str(spec_path)],
                dict(os.environ),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        )
        outs.append(out)
    return procs, outs


def close_clients(
    platform: Platform, procs: list[subprocess.Popen[bytes]], outs: list[Path]
) -> list[dict[str, Any]]:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"close\n")
        proc.stdin.flush()
    for proc in procs:
        read_line(proc, 120, platform.processes.log_of(proc))
    platform.processes.stop(*procs)
    return [json.loads(out.read_text()) for out in outs]


def wait_drained(pid: int, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while established(pid, port) > 0 and time.monotonic() < deadline:
        time.sleep(0.5)


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def wait_idle(pids: list[int], timeout: float = 120) -> float:
    """Until these processes use under 5% of a core over half a second; the seconds
    waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(0.5)
        if sum(cpu_seconds(pid) for pid in pids) - before < 0.025:
            break
    return time.perf_counter() - started


def run_idle(
    platform: Platform,
    tokens: list[str],
    warmup: list[str],
    probe: str,
    args: argparse.Namespace,
) -> Idle:
    process, port = platform.web[0]
    pid = process.pid
    result = Idle(asked=len(tokens), clients=args.clients)
    time.sleep(3)  # the pools and caches of a server that has answered a few requests
    result.rss_fresh = tree_rss_mib(pid)

    # Warm-up: the code paths of a socket run once, so the baseline is not a cold process.
    if warmup:
        procs, outs = run_clients(platform, port, warmup, clients=1, args=args, name="warmup")
        read_line(procs[0], 300, platform.processes.log_of(procs[0]))
        close_clients(platform, procs, outs)
        wait_drained(pid, port)
        wait_idle([pid])
        time.sleep(1)
    result.rss_zero = tree_rss_mib(pid)
    result.pg_zero = pss_mib(platform.postgres_pids())

    client_pids: list[int] = []
    groups = {
        WEB_A: platform.web_pids,
        POSTGRES: platform.postgres_pids,
        CLIENTS: lambda: list(client_pids),
    }
    monitor = CpuMonitor(groups)
    monitor.start()
    started = time.perf_counter()
    procs, outs = run_clients(
        platform, port, tokens, clients=args.clients, args=args, name="idle", probe=probe
    )
    client_pids += [p.pid for p in procs]
    for proc in procs:
        json.loads(read_line(proc, 600, platform.processes.log_of(proc)))
    result.open_seconds = time.perf_counter() - started
    result.cpu_connect = monitor.stop()

    time.sleep(2)
    result.server_seen = established(pid, port) - 1  # not the probe's
    peak = tree_rss_mib(pid)
    monitor = CpuMonitor(groups)
    monitor.start()
    hold_started = time.perf_counter()
    while time.perf_counter() - hold_started < args.hold:
        time.sleep(1)
        peak = max(peak, tree_rss_mib(pid))
    result.held_seconds = time.perf_counter() - hold_started
    result.cpu_hold = monitor.stop()
    result.server_seen = min(result.server_seen, established(pid, port) - 1)
    result.rss_full = max(peak, tree_rss_mib(pid))
    result.pg_full = pss_mib(platform.postgres_pids())

    cpu_before = cpu_seconds(pid)
    closing = time.perf_counter()
    reports = close_clients(platform, procs, outs)
    wait_drained(pid, port)
    wait_idle([pid])
    result.settle_seconds = time.perf_counter() - closing
    result.close_cpu_seconds = cpu_seconds(pid) - cpu_before
    result.rss_closed = tree_rss_mib(pid)

    failures: Counter[str] = Counter()
    connect_s: list[float] = []
    for report in reports:
        result.established += report["established"]
        result.alive_at_close += report["alive_at_close"]
        result.dropped += report["dropped"]
        result.pings += report["pings"]
        result.pongs += report["pongs"]
        failures.update(report["failures"])
        connect_s += report["connect_s"]
        for name, seconds in report["lag"].items():
            if seconds:
                result.lag[name] = Latencies.of(seconds)
    result.failures = dict(failures)
    result.connect = Latencies.of(connect_s) if connect_s else None
    return result


# --- phase 2: fan-out latency -----------------------------------------------------------


@dataclass
class Guest:
    token: str
    customer_id: uuid.UUID
    source: str  # the local address its HTTP requests come from (a browser of its own)
    conversation_id: str = ""


@dataclass
class FanOut:
    label: str
    kind: str
    n: int
    errors: int
    missing: int
    duplicates: int
    early: int  # frames that arrived before the writer's HTTP response
    from_response: Latencies
    from_request: Latencies
    http: Latencies
    cpu: Cpu


class Held:
    """The visitors' sockets on one web process, and when each message frame arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.duplicates = 0
        self.sockets: list[Any] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, port: int, guests: list[Guest], deflate: bool) -> None:
        from websockets.asyncio.client import connect

        gate = asyncio.Semaphore(16)

        async def one(guest: Guest) -> None:
            ready = asyncio.Event()
            async with gate:
                ws = await connect(
                    f"ws://127.0.0.1:{port}/widget/v1/socket?token={guest.token}",
                    origin=ORIGIN,  # type: ignore[arg-type]
                    compression="deflate" if deflate else None,
                    ping_interval=None,
                    open_timeout=30,
                    proxy=None,
                )
            self.sockets.append(ws)
            self.tasks.append(asyncio.create_task(self._read(ws, ready)))
            self.tasks.append(asyncio.create_task(self._ping(ws)))
            # The server sends the history, then where the conversation stands: caught up.
            await asyncio.wait_for(ready.wait(), 30)

        await asyncio.gather(*(one(guest) for guest in guests))

    async def _read(self, ws: Any, ready: asyncio.Event) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                if frame.get("type") == "message":
                    message_id = frame["message"]["id"]
                    if message_id in self.arrived:
                        self.duplicates += 1
                        continue
                    self.arrived[message_id] = now
                    waiter = self.waiters.pop(message_id, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(now)
                elif frame.get("type") == "state":
                    ready.set()

    @staticmethod
    async def _ping(ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(PING_SECONDS)
                await ws.send('{"type":"ping"}')

    async def wait_for(self, message_id: str, seconds: float) -> float | None:
        if message_id in self.arrived:
            return self.arrived[message_id]
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[message_id] = waiter
        try:
            return await asyncio.wait_for(waiter, seconds)
        except TimeoutError:
            return None

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Writer:
    """Commits messages through web process A: as the visitor (each from its own address,
    as browsers would, so the per-IP limit of the widget API applies as in production), or
    as an agent through the API."""

    def __init__(self, port: int, api_key: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.agent = httpx.AsyncClient(
            base_url=self.base, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        )
        self.visitor_clients: dict[str, httpx.AsyncClient] = {}

    def _visitor_client(self, guest: Guest) -> httpx.AsyncClient:
        client = self.visitor_clients.get(guest.source)
        if client is None:
            client = self.visitor_clients[guest.source] = httpx.AsyncClient(
                base_url=self.base,
                transport=httpx.AsyncHTTPTransport(local_address=guest.source),
                headers={"Origin": ORIGIN},
                timeout=30,
            )
        return client

    async def visitor(self, guest: Guest, text: str) -> tuple[int, str]:
        response = await self._visitor_client(guest).post(
            "/widget/v1/messages",
            json={"text": text, "client_id": secrets.token_hex(8)},
            headers={"Authorization": f"Bearer {guest.token}"},
        )
        if response.status_code != 202:
            return response.status_code, response.text[:200]
        return 202, str(response.json()["message"]["id"])

    async def agent_message(self, guest: Guest, text: str) -> tuple[int, str]:
        response = await self.agent.post(
            f"/api/v1/conversations/{guest.conversation_id}/messages", json={"text": text}
        )
        if response.status_code != 202:
            return response.status_code, response.text[:200]
        return 202, str(response.json()["id"])

    async def send(self, kind: str, guest: Guest, text: str) -> tuple[int, str]:
        if kind == "visitor":
            return await self.visitor(guest, text)
        return await self.agent_message(guest, text)

    async def close(self) -> None:
        await self.agent.aclose()
        for client in self.visitor_clients.values():
            await client.aclose()


async def conversations_of(writer: Writer, guests: list[Guest]) -> None:
    by_customer = {str(g.customer_id): g for g in guests}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"channel": "webchat", "limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = await writer.agent.get("/api/v1/conversations", params=params)
        response.raise_for_status()
        page = response.json()
        for item in page["items"]:
            guest = by_customer.get(item["customer"]["id"])
            if guest is not None:
                guest.conversation_id = item["id"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    missing = sum(1 for g in guests if not g.conversation_id)
    if missing:
        raise SystemExit(f"{missing} visitors have no conversation")


async def measure_row(
    *,
    label: str,
    kind: str,
    socket_port: int,
    writer: Writer,
    guests: list[Guest],
    warmup: list[Guest],
    args: argparse.Namespace,
    cpu_groups: dict[str, Any],
) -> FanOut:
    held = Held()
    await held.open(socket_port, [*warmup, *guests], deflate=not args.no_deflate)
    try:
        for guest in warmup:  # one at a time, not measured
            status, message_id = await writer.send(kind, guest, "warm-up")
            if status == 202:
                await held.wait_for(message_id, 10)

        samples: list[tuple[float, float, float, bool]] = []
        errors: list[str] = []
        missing = 0

        async def one(guest: Guest, k: int) -> None:
            nonlocal missing
            t0 = time.perf_counter()
            status, message_id = await writer.send(kind, guest, f"{kind} message {k}")
            t1 = time.perf_counter()
            if status != 202:
                errors.append(f"{status}: {message_id}")
                return
            arrived = await held.wait_for(message_id, args.frame_timeout)
            if arrived is None:
                missing += 1
                return
            samples.append((arrived - t0, arrived - t1, t1 - t0, arrived < t1))

        monitor = CpuMonitor(cpu_groups)
        monitor.start()
        started = time.perf_counter()
        tasks = []
        for k, guest in enumerate(guests):
            await asyncio.sleep(max(0.0, started + k / args.rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(guest, k)))
        await asyncio.gather(*tasks)
        cpu = await asyncio.get_running_loop().run_in_executor(None, monitor.stop)
    finally:
        await held.close()
    if errors:
        print(f"{label}, {kind}: {len(errors)} errors, first: {errors[:3]}", file=sys.stderr)
    return FanOut(
        label=label,
        kind=kind,
        n=len(guests),
        errors=len(errors),
        missing=missing,
        duplicates=held.duplicates,
        early=sum(1 for s in samples if s[3]),
        from_response=Latencies.of([s[1] for s in samples]),
        from_request=Latencies.of([s[0] for s in samples]),
        http=Latencies.of([s[2] for s in samples]),
        cpu=cpu,
    )


async def run_fanout_async(
    platform: Platform, api_key: str, guests: list[Guest], warmup: list[Guest], args: Any
) -> list[FanOut]:
    (proc_a, port_a), (proc_b, port_b) = platform.web
    writer = Writer(port_a, api_key)
    try:
        # Each visitor's first message opens its conversation (through A).
        gate = asyncio.Semaphore(8)

        async def hello(guest: Guest) -> None:
            async with gate:
                status, detail = await writer.visitor(guest, "hi")
                if status != 202:
                    raise SystemExit(f"POST /widget/v1/messages: {status} {detail}")

        await asyncio.gather(*(hello(g) for g in [*warmup, *guests]))
        await conversations_of(writer, [*warmup, *guests])
        if not args.no_analyze:
            # Statistics, as autovacuum would gather them on a live database: on tables it
            # has not analysed yet, the widget's history query is planned as a nested loop
            # over every message of the organisation (see the note printed with the table).
            await asyncio.to_thread(platform.sql, "ANALYZE")

        cpu_groups = {
            WEB_A: lambda: [proc_a.pid],
            WEB_B: lambda: [proc_b.pid],
            POSTGRES: platform.postgres_pids,
            SELF: lambda: [os.getpid()],
        }
        rows = []
        for kind in ("visitor", "agent"):
            for label, port in (("A -> B", port_b), ("A -> A", port_a)):
                # The previous row's sockets closing (and what the servers log) is over.
                await asyncio.to_thread(wait_idle, [proc_a.pid, proc_b.pid])
                rows.append(
                    await measure_row(
                        label=label,
                        kind=kind,
                        socket_port=port,
                        writer=writer,
                        guests=guests,
                        warmup=warmup,
                        args=args,
                        cpu_groups=cpu_groups,
                    )
                )
        return rows
    finally:
        await writer.close()


def run_fanout(
    platform: Platform, api_key: str, widget_key: str, args: argparse.Namespace
) -> list[FanOut]:
    import uvloop

    minted = mint_tokens(platform.assistant_id, widget_key, args.visitors + 10)
    # One loopback address per visitor: 127.0.1.2, 127.0.1.3, ... (all of 127/8 is local).
    guests = [
        Guest(token, customer, f"127.0.{1 + k // 250}.{2 + k % 250}")
        for k, (token, customer) in enumerate(minted)
    ]
    return uvloop.run(
        run_fanout_async(platform, api_key, guests[10:], guests[:10], args),
    )


# --- set-up -----------------------------------------------------------------------------


def server_env(data_dir: Path) -> dict[str, str]:
    from cybergine.privacy import keys

    secret, fernet = keys.generate_secret_key(), keys.generate_fernet_key()
    # This process signs visitor tokens with the same key as the servers.
    keys.install(keys.ServerKeys(secret_key=secret.encode(), encryption_keys=(fernet,)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYBERGINE_")}
    env.update(
        CYBERGINE_DATA_DIR=str(data_dir),
        CYBERGINE_LOG_LEVEL="WARNING",
        CYBERGINE_EMBEDDED_WORKER="false",
        CYBERGINE_EMBEDDINGS="none",
        CYBERGINE_SECRET_KEY=secret,
        CYBERGINE_ENCRYPTION_KEYS=fernet,
    )
    return env


def setup(platform: Platform) -> tuple[str, str]:
    """An organisation and an assistant whose widget may be used from ORIGIN: the
    organisation's API key and the widget key."""
    api_key = platform.create_organisation()
    assistant = platform.post("/api/v1/assistants", {"name": "Bench", "allowed_origins": [ORIGIN]})
    platform.assistant_id = assistant["id"]
    return api_key, str(assistant["widget_key"])


# --- output -----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_idle(idle: Idle, args: argparse.Namespace) -> None:
    deflate = "off" if args.no_deflate else "offered by the clients, as browsers do"
    print(
        f"\n1. idle widget sockets on one web process: {idle.asked} visitors, {idle.clients}"
        f" client processes ({args.connect_concurrency} connects in flight each),"
        f" held {idle.held_seconds:.0f} s with a ping every {PING_SECONDS:.0f} s;"
        f" permessage-deflate {deflate}"
    )
    ok_sockets = idle.established >= GOAL_SOCKETS and idle.server_seen >= GOAL_SOCKETS
    ok_rss = idle.rss_full <= GOAL_RSS_MIB
    failures = ", ".join(f"{k} x{v}" for k, v in idle.failures.items()) or "none"
    rate = idle.established / idle.open_seconds if idle.open_seconds else 0.0
    rows = [
        ("sockets established (clients)", f"{idle.established}", f">= {GOAL_SOCKETS}"),
        ("  held by the server (TCP, after the hold)", f"{idle.server_seen}", ""),
        ("connect failures", f"{sum(idle.failures.values())}", f"0 ({failures})"),
        ("dropped while held / open at the end", f"{idle.dropped} / {idle.alive_at_close}", ""),
        ("pings sent / pongs received", f"{idle.pings} / {idle.pongs}", ""),
        ("time to open them all (s)", f"{idle.open_seconds:.1f}", f"{rate:.0f} sockets/s"),
    ]
    for phase, lag in idle.lag.items():
        rows.append(
            (
                f"probe pong time while {phase}, p50 / p99 / max (ms)",
                f"{lag.p50:.0f} / {lag.p99:.0f} / {lag.max:.0f}",
                "one more socket, a ping every 50 ms",
            )
        )
    if idle.connect is not None:
        rows.append(
            (
                "connect latency p50 / p99 / max (ms)",
                f"{idle.connect.p50:.0f} / {idle.connect.p99:.0f} / {idle.connect.max:.0f}",
                "",
            )
        )
    rows += [
        ("server RSS, fresh (MiB)", f"{idle.rss_fresh:.1f}", ""),
        ("server RSS, 0 sockets after warm-up (baseline)", f"{idle.rss_zero:.1f}", ""),
        (f"server RSS with {idle.established} sockets", f"{idle.rss_full:.1f}", ""),
        ("  RSS per socket (KiB)", f"{idle.per_socket_kib:.1f}", ""),
        ("server RSS after they all closed", f"{idle.rss_closed:.1f}", ""),
        (
            "closing them all: server busy for (s)",
            f"{idle.settle_seconds:.1f}",
            f"{1000 * idle.close_cpu_seconds / max(1, idle.established):.2f} ms CPU per socket",
        ),
        ("PostgreSQL PSS, 0 sockets / N sockets", f"{idle.pg_zero:.0f} / {idle.pg_full:.0f}", ""),
    ]
    print(f"{'measure':<50}{'value':>20}  goal / note")
    for name, value, note in rows:
        print(f"{name:<50}{value:>20}  {note}")
    print(
        f"goal: >= {GOAL_SOCKETS} sockets within {GOAL_RSS_MIB:.0f} MiB RSS:"
        f" sockets {verdict(ok_sockets)}, memory {verdict(ok_rss)}"
        f" ({idle.rss_full:.0f} MiB with {idle.established})"
    )


def print_fanout(rows: list[FanOut], args: argparse.Namespace) -> None:
    print(
        f"\n2. fan-out: one message per visitor committed through web process A, {args.visitors}"
        f" visitors paced at {args.rate:g}/s (10 warm-up messages first); the frame on the"
        " visitor's socket held by B (another process), or by A (the baseline); tables"
        + (" not analysed (--no-analyze)" if args.no_analyze else " analysed before measuring")
    )
    print(
        f"{'writer -> socket':<18}{'message':<9}{'n':>5}{'err':>4}{'miss':>5}{'dup':>4}"
        f"{'early':>6}{'from HTTP response, ms: p50':>29}{'p95':>7}{'p99':>7}{'max':>7}"
        f"{'from request: p50':>19}{'p99':>7}{'HTTP p50':>9}  goal"
    )
    for row in rows:
        r, q, h = row.from_response, row.from_request, row.http
        goal = verdict(r.p99 <= GOAL_P99_MS and not row.missing and not row.errors)
        print(
            f"{row.label:<18}{row.kind:<9}{row.n:>5}{row.errors:>4}{row.missing:>5}"
            f"{row.duplicates:>4}{row.early:>6}{r.p50:>29.1f}{r.p95:>7.1f}{r.p99:>7.1f}"
            f"{r.max:>7.1f}{q.p50:>19.1f}{q.p99:>7.1f}{h.p50:>9.1f}  {goal}"
        )
    print(f"goal: p99 from the HTTP response <= {GOAL_P99_MS:.0f} ms, nothing missing")
    print(
        "(early: frames that reached the socket before the writer read its HTTP response, a"
        " negative 'from response'; visitor: POST /widget/v1/messages, the visitor's own"
        " message echoed to its socket; agent: POST /api/v1/conversations/{id}/messages,"
        " which also sends a state frame)"
    )


def log_errors(workdir: Path) -> Counter[str]:
    """Errors the web processes logged so far (JSON lines), by event."""
    events: Counter[str] = Counter()
    for log in workdir.glob("serve-*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"level": "error"' not in line and '"level": "critical"' not in line:
                continue
            try:
                event = str(json.loads(line).get("event", "?")).strip()
            except ValueError:
                event = line[:80]
            events[event] += 1
    return events


def print_log_errors(logged: dict[str, Counter[str]]) -> None:
    print("\nerrors logged by the web processes (log level WARNING)")
    for phase, events in logged.items():
        listed = ", ".join(f"{n} x {event!r}" for event, n in events.most_common(4)) or "none"
        print(f"  after {phase}: {sum(events.values())} ({listed})")


def print_cpu(rows: list[tuple[str, Cpu]]) -> None:
    cores = psutil.cpu_count() or 1
    print(f"\nCPU while measuring, % of one core (this machine: {cores} cores = {100 * cores}%)")
    groups = (WEB_A, WEB_B, POSTGRES, CLIENTS, SELF)
    print(f"{'phase':<38}" + "".join(f"{g:>9}" for g in groups) + f"{'others':>8}{'busy':>7}")
    for label, cpu in rows:
        cells = "".join(
            f"{cpu.share(g):>9.0f}" if g in cpu.seconds else f"{'-':>9}" for g in groups
        )
        print(
            f"{label:<38}{cells}{100 * cpu.others / cpu.elapsed:>8.0f}"
            f"{100 * cpu.busy / cpu.elapsed:>7.0f}"
        )
    print("(clients: the socket client processes; bench: this process, the fan-out client)")


# --- main -------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> None:
    from cybergine import __version__

    started = time.perf_counter()
    load_before = os.getloadavg()
    nofile = raise_open_files()
    workdir = Path(tempfile.mkdtemp(prefix="cybergine-bench-rt-"))
    processes = Processes(workdir)
    idle: Idle | None = None
    fanout: list[FanOut] = []
    cpu_rows: list[tuple[str, Cpu]] = []
    settings: dict[str, str] = {}
    logged: dict[str, Counter[str]] = {}
    try:
        data_dir = workdir / "data"
        platform = Platform(
            workdir=workdir, data_dir=data_dir, env=server_env(data_dir), processes=processes
        )
        platform.start_web()
        api_key, widget_key = setup(platform)
        settings = dict(
            platform.sql(
                "SELECT name, setting FROM pg_settings WHERE name IN ('max_connections',"
                " 'synchronous_commit', 'server_version')"
            )
        )
        if args.sockets:
            tokens = [
                t for t, _ in mint_tokens(platform.assistant_id, widget_key, args.sockets + 101)
            ]
            idle = run_idle(platform, tokens[101:], tokens[1:101], tokens[0], args)
            logged["1. idle sockets (web A)"] = log_errors(workdir)
            assert idle.cpu_connect is not None
            assert idle.cpu_hold is not None
            cpu_rows.append((f"1. opening {idle.asked} sockets", idle.cpu_connect))
            cpu_rows.append((f"1. holding {idle.established} sockets idle", idle.cpu_hold))
        if args.visitors:
            platform.start_web()
            fanout = run_fanout(platform, api_key, widget_key, args)
            logged["whole run (web A and B)"] = log_errors(workdir)
            cpu_rows += [(f"2. {row.label}, {row.kind}", row.cpu) for row in fanout]
        if platform.api is not None:
            platform.api.close()
    finally:
        processes.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    cores = psutil.cpu_count() or 1
    print(
        f"cybergine {__version__}; Python {host.python_version()}; uvicorn {version('uvicorn')}"
        f" (WebSockets by websockets {version('websockets')}, sans-I/O); uvloop"
        f" {version('uvloop')}; PostgreSQL {settings.get('server_version')} embedded"
        f" (synchronous_commit={settings.get('synchronous_commit')},"
        f" max_connections={settings.get('max_connections')})"
    )
    print(
        f"{host.machine()}, {cores} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB;"
        f" load average before the run {load_before[0]:.1f}; open files limit {nofile};"
        " CYBERGINE_EMBEDDED_WORKER=false (no reply jobs); log level WARNING"
    )
    if idle is not None:
        print_idle(idle, args)
    if fanout:
        print_fanout(fanout, args)
    print_cpu(cpu_rows)
    print_log_errors(logged)
    busy_elsewhere = [label for label, cpu in cpu_rows if cpu.others / cpu.elapsed > 0.25]
    if busy_elsewhere:
        print(
            "warning: other processes used more than a quarter of a core during: "
            + "; ".join(busy_elsewhere)
        )
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--client":
        client_main(sys.argv[2])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=5000, help="N idle sockets (0: skip)")
    parser.add_argument("--clients", type=int, default=2, help="client processes holding them")
    parser.add_argument("--connect-concurrency", type=int, default=64, help="per client")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds the sockets stay idle")
    parser.add_argument("--visitors", type=int, default=200, help="M for fan-out (0: skip)")
    parser.add_argument("--rate", type=float, default=50.0, help="fan-out messages per second")
    parser.add_argument("--frame-timeout", type=float, default=10.0)
    parser.add_argument(
        "--no-deflate", action="store_true", help="clients do not offer permessage-deflate"
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="fan-out on tables PostgreSQL has not analysed yet (a fresh install)",
    )
    # SIGTERM (kill, timeout) cleans up like Ctrl-C: the `finally` blocks stop the servers.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        main(parser.parse_args())
    except KeyboardInterrupt:
        print("interrupted: every process of the run stopped", file=sys.stderr)
        sys.exit(130)
