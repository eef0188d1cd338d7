"""Privacy's numbers: a customer's export and erasure, and the retention purge of a million
expired messages while WhatsApp replies go out beside it.

One embedded PostgreSQL in a temporary directory, migrated to head, holds every
organisation of the run; everything is seeded with set-based SQL (``generate_series``,
in ``bench/privacy_seeds.py``).

rights: one organisation holds ``--repetitions`` customers with ``--messages`` messages
each (in ``--conversations-per-customer`` conversations, ``--attachments`` of them images
of ``--attachment-bytes`` incompressible bytes, one raw webhook delivery per message naming
the customer as Meta's do) beside ``--other-customers`` customers with 50 messages each.
For each customer in turn, the services the API and the dashboard call: the export
(``privacy.export.export_customer``, then encoded by ``privacy.api.export_response`` as
the route sends it) and the erasure (``privacy.erasure.erase_customer``), each in its own
transaction, committed, with an officer's ``Principal``. Median, min and max seconds, and
the export's size. Goals (policy §14): erasure <= 2 s, export <= 5 s.

purge: another organisation keeps conversations 30 days; it holds ``--conversations``
conversations quiet for 60 days with ``--messages-expired`` messages in all (one in ten
with an attachment), and as many active ones that must survive. ``privacy.purge.run``
(in a process of its own) removes what expired, in its batches, while a probe plays the
reply path's writes ten times a second (lock an active conversation, add a message,
commit) and, unless ``--skip-e2e``, the end-to-end part of ``bench/whatsapp.py`` runs on
the same PostgreSQL:
``cybergine serve``, ``cybergine worker`` processes, Meta's Graph API simulated, questions
delivered at once by a load generator. Its replies/s is measured once before the purge
(unloaded) and once while the purge runs. Goals (policy §11): the purge <= 120 s, and the
replies/s while it runs within 20 % of the unloaded figure.

Usage: .venv/bin/python bench/privacy.py [--quick] [--repetitions 5] [--messages 5000]
       [--attachments 50] [--messages-expired 1000000] [--conversations 1000]
       [--batch-size 2000] [--replies 1000] [--e2e-warmup 100] [--config 1x16]
       [--skip-rights] [--skip-purge] [--skip-e2e]
About six minutes at the defaults on a busy 2-core machine; ``--quick`` about two.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import platform as host
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

import live_platform
import load
import whatsapp
from cybergine.analytics import rollups
from cybergine.db import embedded, migrate
from cybergine.db.engine import Database
from cybergine.privacy import keys, purge
from cybergine.privacy.purgers import BATCH_SIZE
from cybergine.settings import Settings
from privacy_rights import print_rights, run_rights
from privacy_seeds import (
    ALL_MESSAGES,
    EXPIRED,
    EXPIRED_DAYS_AGO,
    PERIOD_DAYS,
    PURGE_SEED,
)

GOAL_PURGE_SECONDS = 120.0
GOAL_REPLIES_KEPT = 0.8  # replies/s during the purge, as a share of the unloaded figure

# --- purge: seeding, the reply path's probe, the purge's own process ---------------------------


async def count(database: Database, sql: str, organisation: uuid.UUID) -> int:
    async with database.transaction() as session:
        return int((await session.execute(text(sql), {"org": organisation})).scalar_one())


async def seed_purge(
    url: str, organisation: uuid.UUID, args: argparse.Namespace
) -> tuple[int, int]:
    """(expired, active) messages seeded; vacuumed, so that no autovacuum of the new rows
    runs during the measurements."""
    database = Database(url, pool_size=2, statement_timeout_ms=0)
    params = {
        "org": organisation,
        "period": PERIOD_DAYS,
        "old": EXPIRED_DAYS_AGO,
        "conversations": args.conversations,
        "messages": args.messages_expired,
    }
    started = time.perf_counter()
    for statement in PURGE_SEED:
        async with database.transaction() as session:
            await session.execute(text(statement), params)
    async with database.autocommit() as session:
        await session.execute(text("VACUUM ANALYZE"))
    # A year of messages arrives here at once, where a live organisation's were summed into
    # its analytics as they came: brought up to date now, so that the workers' minutely
    # sweep does not recompute the whole year while the unloaded replies are measured
    # (it did, with PostgreSQL at a full core through that measurement).
    idle_hours = Settings.model_fields["analytics_idle_resolution_hours"].default
    refreshing = time.perf_counter()
    async with database.transaction() as session:
        await rollups.refresh(session, organisation, rollups.measure_now(idle_hours))
    refreshed = time.perf_counter() - refreshing
    expired = await count(database, EXPIRED, organisation)
    active = await count(database, ALL_MESSAGES, organisation) - expired
    await database.dispose()
    print(
        f"purge: seeded {expired:,} expired messages in {args.conversations:,} conversations"
        f" (+{active:,} active) in {time.perf_counter() - started:.1f} s, its analytics"
        f" refreshed in {refreshed:.1f} s of it",
        flush=True,
    )
    return expired, active


# The probe's rounds, one per interval: a sampler, not a load. Run as often as it could
# (some 55 rounds a second), it was a second reply path that ran only while the purge did,
# and the end-to-end replies measured then paid for it as if for the purge.
PROBE_INTERVAL_SECONDS = 0.1
PROBE_BASELINE_SECONDS = 5.0


async def reply_path_probe(database: Database, stop: asyncio.Event) -> list[float]:
    """What the reply path does to an active conversation, ten times a second: lock the
    conversation, write a message, commit. Milliseconds per round."""
    async with database.transaction() as session:
        active = list(
            (
                await session.execute(
                    text(
                        "SELECT id, organisation_id FROM conversations WHERE channel = 'whatsapp'"
                        " AND customer_id IN (SELECT id FROM customers WHERE external_id LIKE"
                        " 'bench-%') AND last_message_at > now() - interval '1 day' LIMIT 50"
                    )
                )
            ).all()
        )
    latencies: list[float] = []
    round_number = 0
    while not stop.is_set():
        conversation, organisation = active[round_number % len(active)]
        round_number += 1
        started = time.perf_counter()
        async with database.transaction() as session:
            await session.execute(
                text("SELECT 1 FROM conversations WHERE id = :id FOR UPDATE"), {"id": conversation}
            )
            await session.execute(
                text(
                    "INSERT INTO messages (id, organisation_id, conversation_id, direction, "
                    "sender, type, text, status, send_attempts) VALUES (gen_random_uuid(), "
                    ":org, :id, 'inbound', 'customer', 'text', 'probe', 'received', 0)"
                ),
                {"org": organisation, "id": conversation},
            )
            await session.execute(
                text("UPDATE conversations SET last_message_at = now() WHERE id = :id"),
                {"id": conversation},
            )
        took = time.perf_counter() - started
        latencies.append(took * 1000)
        await asyncio.sleep(max(0.0, PROBE_INTERVAL_SECONDS - took))
    return latencies


async def purge_child(spec: dict[str, Any]) -> dict[str, Any]:
    """The purge, in a process of its own (as a worker runs it), beside the probe: a quiet
    baseline of the probe first, then "purging" on stdout, the purge, and the figures."""
    keys.install(keys.read_key_file(Path(spec["key_file"])))
    database = Database(spec["url"], pool_size=4, statement_timeout_ms=0)
    stop = asyncio.Event()
    baseline_probe = asyncio.create_task(reply_path_probe(database, stop))
    await asyncio.sleep(PROBE_BASELINE_SECONDS)
    stop.set()
    baseline = await baseline_probe
    print("purging", flush=True)
    stop = asyncio.Event()
    probe = asyncio.create_task(reply_path_probe(database, stop))
    wall, started = time.time(), time.perf_counter()
    report = await purge.run(database, batch_size=spec["batch_size"])
    seconds = time.perf_counter() - started
    stop.set()
    during = await probe
    await database.dispose()
    return {
        "wall_start": wall,
        "seconds": seconds,
        "removed": report.by_organisation().get(uuid.UUID(spec["organisation"]), {}),
        "baseline": baseline,
        "during": during,
    }


# --- purge beside the end-to-end replies -------------------------------------------------------


@dataclass
class Purge:
    seconds: float
    wall_start: float
    removed: dict[str, dict[str, int]]
    baseline: list[float]
    during: list[float]
    left_expired: int
    left_all: int
    unloaded: live_platform.Replies | None = None
    loaded: live_platform.Replies | None = None


def start_purge(
    processes: load.Processes,
    data_dir: Path,
    url: str,
    organisation: uuid.UUID,
    args: argparse.Namespace,
) -> subprocess.Popen[bytes]:
    """The purge's process, once its probe's baseline is taken and the purge begins."""
    workdir = processes.logs
    spec_path = workdir / "purge.spec.json"
    spec = {
        "url": url,
        "key_file": str(data_dir / keys.KEY_FILE_NAME),
        "organisation": str(organisation),
        "batch_size": args.batch_size,
    }
    spec_path.write_text(json.dumps({**spec, "out": str(workdir / "purge.json")}))
    child = processes.start(
        "purge",
        [sys.executable, str(Path(__file__).resolve()), "--purge-child", str(spec_path)],
        dict(os.environ),
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    load.expect(child.stdout, "purging", processes.log_of(child))
    return child


def finish_purge(
    processes: load.Processes,
    child: subprocess.Popen[bytes],
    url: str,
    organisation: uuid.UUID,
) -> Purge:
    """Waits for the purge's process; its figures, and what it left."""
    workdir = processes.logs
    if child.wait(timeout=1800) != 0:
        raise SystemExit(f"the purge failed:\n{load.tail(processes.log_of(child))}")
    processes.stop(child)
    data = json.loads((workdir / "purge.json").read_text())

    async def left() -> tuple[int, int]:
        database = Database(url, pool_size=1)
        counts = (
            await count(database, EXPIRED, organisation),
            await count(database, ALL_MESSAGES, organisation),
        )
        await database.dispose()
        return counts

    left_expired, left_all = asyncio.run(left())
    return Purge(**data, left_expired=left_expired, left_all=left_all)


def run_purge(
    url: str, data_dir: Path, workdir: Path, args: argparse.Namespace
) -> tuple[Purge, int, int]:
    """The purge, with the end-to-end replies measured before and during it; and how many
    expired messages were seeded (it must remove them all, and alone: the workers' hourly
    purge, at minute 7, would take some) and how many active ones (they must survive)."""
    from cybergine.channels.whatsapp.simulator import GraphSimulator

    organisation = uuid.uuid4()
    expired, active = asyncio.run(seed_purge(url, organisation, args))
    processes = load.Processes(workdir)
    workers, concurrency = whatsapp.parse_configs(args.config)[0]
    # The options of bench/whatsapp.py its Replier and print_replies read.
    e2e = argparse.Namespace(
        replies=args.replies,
        e2e_warmup=args.e2e_warmup,
        concurrency=args.concurrency,
        embeddings=args.embeddings,
        send_rate=1000.0,
        stall_seconds=30.0,
    )
    unloaded = loaded = None
    try:
        with GraphSimulator() as sim:
            replier = None
            if not args.skip_e2e:
                platform = live_platform.Platform(
                    workdir=workdir,
                    data_dir=data_dir,
                    env=live_platform.base_env(data_dir, sim.base_url, args.embeddings),
                    processes=processes,
                )
                platform.start_web()
                platform.setup()
                replier = live_platform.Replier(
                    platform,
                    sim,
                    e2e,
                    workers=workers,
                    concurrency=concurrency,
                    tag=1,
                    secret=secrets.token_hex(16),
                )
                platform.wait_for_knowledge()
                unloaded = replier.measure("unloaded", args.replies, warmup=args.e2e_warmup)
            child = start_purge(processes, data_dir, url, organisation, args)
            if replier is not None:
                # The workers' connections are warm from the unloaded run.
                loaded = replier.measure("loaded", args.replies)
                replier.stop()
            result = finish_purge(processes, child, url, organisation)
    finally:
        processes.stop_all()
    result.unloaded, result.loaded = unloaded, loaded
    return result, expired, active


def print_purge(result: Purge, expired: int, active: int, args: argparse.Namespace) -> bool:
    def figures(values: list[float]) -> str:
        ordered = sorted(values)
        return (
            f"p50 {statistics.median(ordered):.1f} ms,"
            f" p99 {load.quantile(ordered, 0.99):.1f} ms,"
            f" max {ordered[-1]:.1f} ms over {len(ordered)} writes"
        )

    removed = result.removed.get("conversation", {})
    messages = removed.get("messages", 0)
    print(f"\nretention purge: batch size {args.batch_size}; purged: {removed}")
    print(
        f"retention purge of {messages:,} expired messages: {result.seconds:.1f} s"
        f" ({messages / result.seconds:,.0f} messages/s); goal <= {GOAL_PURGE_SECONDS:.0f} s:"
        f" {whatsapp.verdict(result.seconds <= GOAL_PURGE_SECONDS)}"
    )
    print(f"reply-path probe writes before: {figures(result.baseline)}")
    print(f"reply-path probe writes during: {figures(result.during)}")
    print(f"left: {result.left_expired} expired, {result.left_all:,} active messages")
    ok = result.left_expired == 0 and result.left_all >= active
    if not ok:
        print("MISMATCH: the purge left expired messages, or removed active ones")
    if messages != expired:
        ok = False
        print(
            f"MISMATCH: the purge removed {messages:,} of {expired:,} expired messages: another"
            " purge (the workers' hourly job, at minute 7) ran beside it; run again"
        )
    unloaded, loaded = result.unloaded, result.loaded
    if unloaded is None or loaded is None:
        return ok
    print(
        f"\nend-to-end replies (bench/whatsapp.py's): {args.replies} questions delivered at once"
        f" (concurrency {args.concurrency}) to 1 web process, workers {args.config}, embeddings"
        f" {args.embeddings}; unloaded after {args.e2e_warmup} warm-up replies, then again while"
        " the purge runs"
    )
    print(
        f"{'':<18}{'replied':>8}{'reply/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
        f"{'missing':>8}{'dupes':>6}{'deliv/s':>8}  reply job: wait, run (medians)"
    )
    for label, replies in (("unloaded", unloaded), ("during the purge", loaded)):
        lat = replies.latency
        wait, run, _ = replies.jobs.get("reply", (float("nan"), float("nan"), 0))
        print(
            f"{label:<18}{replies.replied:>8}{replies.rate:>8.1f}{lat.p50:>8.0f}{lat.p99:>8.0f}"
            f"{lat.max:>8.0f}{replies.missing:>8}{replies.duplicates:>6}"
            f"{replies.load.rate:>8.0f}  {wait:.0f} ms, {run:.0f} ms"
            + ("  (stalled)" if replies.stalled else "")
        )
    ratio = loaded.rate / unloaded.rate if unloaded.rate else 0.0
    last_reply = loaded.load.wall_start + loaded.replied / loaded.rate if loaded.rate else 0.0
    inside = last_reply <= result.wall_start + result.seconds
    print(
        f"end-to-end replies/s: unloaded {unloaded.rate:.1f}, during the purge {loaded.rate:.1f}:"
        f" {100 * ratio:.0f} % of unloaded; goal >= {100 * GOAL_REPLIES_KEPT:.0f} %:"
        f" {whatsapp.verdict(ratio >= GOAL_REPLIES_KEPT)}"
        + ("" if inside else " (the purge ended before the last reply: the load was shorter)")
    )
    for label, replies in (("unloaded", unloaded), ("during the purge", loaded)):
        cpu = replies.load.cpu
        print(
            f"CPU, % of one core, {label}: web {cpu.share(load.WEB):.0f}, PostgreSQL (the"
            f" purge's queries among them) {cpu.share(load.POSTGRES):.0f}, workers"
            f" {cpu.share(load.WORKERS):.0f}, this process with the simulator"
            f" {cpu.share(load.SELF):.0f}, others (the purge's process among them)"
            f" {100 * cpu.others / cpu.elapsed:.0f}"
        )
    return ok and unloaded.missing == loaded.missing == 0


# --- main --------------------------------------------------------------------------------------

QUICK = {
    "repetitions": 3,
    "messages_expired": 200_000,
    "conversations": 200,
    "replies": 100,
    "e2e_warmup": 50,
}


def main(args: argparse.Namespace, defaults: dict[str, Any]) -> int:
    if args.quick:  # the sizes given on the command line win
        for name, value in QUICK.items():
            if getattr(args, name) == defaults[name]:
                setattr(args, name, value)
    started = time.perf_counter()
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="cybergine-bench-privacy-"))
    # Registered before the server starts, so it runs after the server's own exit hook
    # has stopped it.
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    data_dir = workdir / "data"
    # The keys every process of the run reads from the data directory.
    data_dir.mkdir()
    server_keys = keys.ServerKeys(
        secret_key=keys.generate_secret_key().encode(),
        encryption_keys=(keys.generate_fernet_key(),),
    )
    keys.write_key_file(data_dir / keys.KEY_FILE_NAME, server_keys)
    keys.install(server_keys)
    url = embedded.start(data_dir).url
    migrate.upgrade(url)
    ok = True
    rights = asyncio.run(run_rights(url, args)) if not args.skip_rights else None
    purged = run_purge(url, data_dir, workdir, args) if not args.skip_purge else None

    print(
        f"\nhost: {host.node()} {host.machine()}, {os.cpu_count()} cores; load average before"
        f" the run {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}"
    )
    if rights is not None:
        ok &= print_rights(rights, args)
    if purged is not None:
        ok &= print_purge(*purged, args)
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--purge-child":
        spec = json.loads(Path(sys.argv[2]).read_text())
        Path(spec["out"]).write_text(json.dumps(asyncio.run(purge_child(spec))))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: " + str(QUICK))
    parser.add_argument("--repetitions", type=int, default=5, help="customers exported and erased")
    parser.add_argument("--messages", type=int, default=5000, help="per customer")
    parser.add_argument("--attachments", type=int, default=50, help="per customer")
    parser.add_argument("--attachment-bytes", type=int, default=200_000)
    parser.add_argument("--conversations-per-customer", type=int, default=10)
    parser.add_argument("--other-customers", type=int, default=200)
    parser.add_argument("--messages-expired", type=int, default=1_000_000, help="to purge")
    parser.add_argument("--conversations", type=int, default=1000, help="expired ones holding them")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="the purge's")
    # 1,000: some 12 s of replies in each window; 200 were 2 s, too short to tell the
    # purge's effect from the run-to-run noise.
    parser.add_argument("--replies", type=int, default=1000, help="questions per end-to-end run")
    parser.add_argument("--e2e-warmup", type=int, default=100, help="answered before measuring")
    parser.add_argument("--concurrency", type=int, default=64, help="deliveries in flight")
    parser.add_argument("--config", default="1x16", help="WORKERSxCONCURRENCY of the workers")
    parser.add_argument("--embeddings", choices=("local", "none"), default="none")
    parser.add_argument("--skip-rights", action="store_true")
    parser.add_argument("--skip-purge", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true", help="the purge with the probe only")
    # SIGTERM (kill, timeout) cleans up like Ctrl-C: the `finally` blocks stop the servers.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        sys.exit(main(parser.parse_args(), {name: parser.get_default(name) for name in QUICK}))
    except KeyboardInterrupt:
        print("interrupted: every process of the run stopped", file=sys.stderr)
        sys.exit(130)
