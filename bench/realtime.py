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
import json
import os
import platform as host
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from live_platform import Platform
from load import Cpu, CpuMonitor, Latencies, Processes
from realtime_clients import (
    CLIENT_SCRIPT,
    CLIENTS,
    GOAL_P99_MS,
    GOAL_RSS_MIB,
    GOAL_SOCKETS,
    ORIGIN,
    PING_SECONDS,
    POSTGRES,
    SELF,
    WEB_A,
    WEB_B,
    cpu_seconds,
    established,
    mint_tokens,
    pss_mib,
    raise_open_files,
    read_line,
    tree_rss_mib,
    version,
    wait_idle,
)
from realtime_fanout import (
    FanOut,
    run_fanout,
)

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
                [sys.executable, CLIENT_SCRIPT, "--client", str(spec_path)],
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
