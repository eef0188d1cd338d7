"""What the WhatsApp benches share to put a live server under load and watch it: the
load generator (a child process of its own: asyncio on uvloop, one keep-alive HTTP/1.1
connection per concurrent sender and server, requests built and signed beforehand),
the processes started and the CPU each party uses, one measured load, and the
statistics of what it measured. ``bench/whatsapp.py`` and ``bench/privacy.py`` use it.

The generator runs as ``load.py --loadgen SPEC``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

BIN = Path(sys.executable).parent
WEBHOOK_PATH = "/webhooks/whatsapp"
WABA_ID = "102290129340398"


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


# The parties whose CPU a measurement reports.
WEB, POSTGRES, WORKERS, GENERATOR, SELF = (
    "web",
    "postgres",
    "workers",
    "generator",
    "bench+sim",
)


def display_number(phone_number_id: str) -> str:
    return f"+1 555 {phone_number_id[-7:]}"


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


# --- the load generator (a child process: `load.py --loadgen SPEC`) -------------------


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


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--loadgen":
        raise SystemExit("usage: load.py --loadgen SPEC (the benches start it)")
    loadgen_main(sys.argv[2])
