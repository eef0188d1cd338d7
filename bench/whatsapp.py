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

The load generator is a separate process (``bench/load.py``, with what the benches share
to start processes and measure them).

Usage: .venv/bin/python bench/whatsapp.py [--deliveries 2000] [--concurrency 64]
       [--message-history-months 24]
       [--replies 500] [--configs 1x16,2x16] [--embeddings local|none]
       [--send-rate 1000] [--paced 40] [--skip-ingest] [--skip-e2e]
The defaults finish in about three minutes on a 2-core machine; the sizes of the brief
are ``--deliveries 5000 --replies 2000`` (seven to eight minutes there, with
``--configs 1x16,1x32,2x16 --budget-seconds 900``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

import analytics_upkeep
import metrics_cost
import tracing_cost
from live_platform import Platform, Replier, Replies, base_env
from load import (
    GENERATOR,
    POSTGRES,
    QA_PAIRS,
    SELF,
    WEB,
    WORKERS,
    Cpu,
    LoadResult,
    Processes,
    display_number,
    run_load,
)
from startup import free_port, wait_ready

GOAL_DELIVERIES_PER_S = 1000.0
GOAL_P99_MS = 100.0
GOAL_REPLIES_PER_S = 100.0

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


def add_message_history(platform: Platform, months: int) -> None:
    """The partitions of messages for the ``months`` before this one, which an
    installation that has kept that much history has: every read of messages by a key
    other than its id (a conversation, a delivery seen before, a status) visits each."""
    from cybergine.db.partitions import PARTITIONED

    messages = PARTITIONED["messages"]
    now = datetime.now(UTC)
    first = now
    for _ in range(months):
        first = first.replace(day=1) - timedelta(days=1)  # a day of the month before
    for start in messages.starts(first, now):
        if start < messages.start_of(now):  # the current one is the migration's
            for statement in messages.partition_statements(start):
                platform.sql(statement)


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
            add_message_history(platform, args.message_history_months)
            settings = dict(
                platform.sql(
                    "SELECT name, setting FROM pg_settings WHERE name IN ('max_connections',"
                    " 'synchronous_commit', 'fsync', 'shared_buffers', 'server_version')"
                )
            )
            secret = secrets.token_hex(16)

            if args.metrics_rounds or args.tracing_rounds:
                cost = metrics_cost if args.metrics_rounds else tracing_cost
                for row in cost.run_rounds(
                    platform, sim, args, secret=secret, run_ingest=run_ingest
                ):
                    ingest.append(row)
                    cpu_rows.append((row.label, row.load.cpu))
            elif args.upkeep_rounds:
                upkeep = (
                    []
                    if args.skip_ingest
                    else analytics_upkeep.run_rounds(
                        platform, sim, args, secret=secret, run_ingest=run_ingest
                    )
                )
                for row in upkeep:
                    ingest.append(row)
                    cpu_rows.append((row.label, row.load.cpu))
                if not args.skip_e2e:
                    replies += analytics_upkeep.run_e2e_rounds(platform, sim, args, secret=secret)
            elif not args.skip_ingest:
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

            if not args.skip_e2e and not args.upkeep_rounds:
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
    parser.add_argument(
        "--upkeep-rounds",
        type=int,
        default=0,
        help="instead of the ingest and end-to-end runs: rounds of one run of each per"
        " analytics upkeep variant (--upkeep-variants), in alternating order",
    )
    parser.add_argument("--upkeep-variants", default="none,old,new")
    parser.add_argument(
        "--message-history-months",
        type=int,
        default=0,
        help="the partitions of messages of this many months before this one, as an"
        " installation keeping that much history has (0: those a new one has)",
    )
    parser.add_argument(
        "--upkeep-old-src",
        default="",
        help="the src directory of the code the 'old' variant refreshes with (e.g. a git"
        " worktree of an earlier commit)",
    )
    parser.add_argument("--upkeep-every", type=float, default=5.0, help="seconds between refreshes")
    parser.add_argument(
        "--metrics-rounds",
        type=int,
        default=0,
        help="instead of the ingest runs: rounds of one ingest run with CYBERGINE_METRICS=on"
        " and one with =off, in alternating order (bench/metrics_cost.py)",
    )
    parser.add_argument("--metrics-scrape-seconds", type=float, default=1.0)
    parser.add_argument(
        "--tracing-rounds",
        type=int,
        default=0,
        help="instead of the ingest runs: rounds of one ingest run with OpenTelemetry traces"
        " on and one with them off, in alternating order (bench/tracing_cost.py)",
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
