"""The realtime bench's socket clients, each a child process of its own
(``realtime_clients.py --client SPEC``): visitors' WebSockets held open and pinged as the
widget does, with a probe that times how long the server keeps a client waiting; and the
constants and helpers the bench's parts share."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import random
import resource
import selectors
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from load import tail

ORIGIN = "https://shop.example"
PING_SECONDS = 25.0  # what the widget does; the server drops a socket silent for 60 s
PROBE_SECONDS = 0.05  # the responsiveness probe's ping interval

GOAL_SOCKETS = 5000
GOAL_RSS_MIB = 500.0
GOAL_P99_MS = 50.0

WEB_A, WEB_B, POSTGRES, CLIENTS, SELF = "web A", "web B", "postgres", "clients", "bench"


# The script the clients run as (this file).
CLIENT_SCRIPT = str(Path(__file__).resolve())


# --- the socket clients (child processes: `realtime_clients.py --client SPEC`) ------------------


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


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--client":
        raise SystemExit("usage: realtime_clients.py --client SPEC (the bench starts it)")
    client_main(sys.argv[2])
