"""Analytics' numbers: the API's answers and the aggregates' rebuild over a year of one
busy organisation.

One embedded PostgreSQL in a temporary directory, migrated to head, holds one
organisation with ``--conversations`` conversations and ``--messages`` messages each
over the last 365 days, seeded with set-based SQL (``bench/analytics_seeds.py``). Then:

rebuild: ``analytics.rebuild.rebuild`` of the 12 months (what ``cybergine analytics
rebuild`` runs), timed. Goal: <= 10 minutes at 1,000,000 conversations.

queries: the services the API routes call, each in its own transaction as a request's,
``--repetitions`` times: ``summary`` over the last 30 days, 90 days and 12 months,
``timeseries`` by day over 12 months and by hour over 30 days; p50 and p95 server time.
Goal: p95 <= 200 ms. Baseline, in the same run: the 30-day summary's headline counts
computed straight from the raw rows (``definitions.conversation_metrics``), which is
what the aggregates spare each request.

export: the CSV export's generator (``analytics.api._csv_chunks``, what the route
streams) over the last ``--export-days`` days, drained: rows/s, and this process's
resident memory at each tenth of the rows. Goal: >= 50,000 rows/s with flat memory.

Usage: .venv/bin/python bench/analytics.py [--conversations 1000000] [--messages 10]
       [--repetitions 20] [--export-days 30]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import platform as host
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text

from analytics_seeds import SEED
from cybergine.analytics import api as analytics_api
from cybergine.analytics import definitions, rebuild, rollups, service
from cybergine.analytics.periods import Filters, Interval, period
from cybergine.db import embedded, migrate
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.privacy import keys

DAYS = 365
IDLE_HOURS = 24.0


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def seed(database: Database, args: argparse.Namespace) -> dict[str, Any]:
    parameters = {
        "org": uuid.uuid4(),
        "assistant_a": uuid.uuid4(),
        "assistant_b": uuid.uuid4(),
        "conversations": args.conversations,
        "messages": args.messages,
        "days": DAYS,
    }
    for statement in SEED:
        started = time.perf_counter()
        async with database.autocommit() as session:
            await session.execute(text(statement), parameters)
        what = " ".join(statement.split()[:3])
        print(f"  seeded in {time.perf_counter() - started:6.1f} s: {what}")
    return parameters


def _filters(days: int) -> Filters:
    today = datetime.now(UTC).date()
    return Filters(period(today - timedelta(days=days - 1), today, "Europe/Paris"))


async def _timed(database: Database, work: Any, repetitions: int) -> list[float]:
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        async with database.transaction() as session:
            await work(session)
        times.append(time.perf_counter() - started)
    return times


async def queries(database: Database, organisation_id: uuid.UUID, repetitions: int) -> list[Any]:
    measured = []

    def summary(days: int) -> Any:
        return lambda s: service.summary(TenantScope(s, organisation_id), _filters(days))

    def series(days: int, interval: Interval) -> Any:
        return lambda s: service.timeseries(
            TenantScope(s, organisation_id), _filters(days), interval
        )

    cases = [
        ("summary, 30 days", summary(30)),
        ("summary, 90 days", summary(90)),
        ("summary, 12 months", summary(365)),
        ("timeseries by day, 12 months", series(365, Interval.DAY)),
        ("timeseries by hour, 30 days", series(30, Interval.HOUR)),
    ]
    for name, work in cases:
        measured.append((name, await _timed(database, work, repetitions)))

    filters = _filters(30)
    counts = ", ".join(f"count(*) FILTER (WHERE {f.predicate})" for f in definitions.Figure)
    within = "c.created_at >= :start AND c.created_at < :end"
    raw = f"SELECT {counts} FROM ({definitions.conversation_metrics(within)}) AS metrics"
    parameters = {
        **service.metrics_parameters(organisation_id, filters),
        **rollups.measure_now(IDLE_HOURS).parameters,
    }

    async def baseline(session: Any) -> None:
        await session.execute(text(raw), parameters)

    measured.append(
        (
            "baseline: 30-day counts from raw rows",
            await _timed(database, baseline, max(3, repetitions // 5)),
        )
    )
    return measured


async def export(database: Database, organisation_id: uuid.UUID, days: int) -> dict[str, Any]:
    process = psutil.Process()
    filters = _filters(days)
    async with database.transaction() as session:
        total = await session.scalar(
            text(
                "SELECT count(*) FROM conversations WHERE organisation_id = :o"
                " AND created_at >= :s AND created_at < :e"
            ),
            {"o": organisation_id, "s": filters.period.start, "e": filters.period.end},
        )
    rows, size, rss = 0, 0, []
    step = max(1, (total or 1) // 10)
    started = time.perf_counter()
    async for chunk in analytics_api._csv_chunks(database, organisation_id, filters):
        size += len(chunk)
        before = rows
        rows += chunk.count(b"\n")
        if before // step != rows // step:
            rss.append(process.memory_info().rss)
    seconds = time.perf_counter() - started
    return {"rows": rows - 1, "bytes": size, "seconds": seconds, "rss": rss}


async def run(url: str, args: argparse.Namespace) -> bool:
    database = Database(url, pool_size=2, statement_timeout_ms=0)
    ok = True
    try:
        print(f"seeding {args.conversations:,} conversations, {args.messages} messages each")
        seeded = await seed(database, args)
        organisation_id = seeded["org"]

        started = time.perf_counter()
        await rebuild.rebuild(
            database,
            idle_hours=IDLE_HOURS,
            organisation_id=organisation_id,
            since=datetime.now(UTC) - timedelta(days=DAYS + 1),
        )
        rebuilt = time.perf_counter() - started
        scale = 1_000_000 / args.conversations
        print(
            f"\nrebuild of 12 months: {rebuilt:.1f} s ({rebuilt * scale / 60:.1f} min scaled"
            f" linearly to 1,000,000 conversations; goal <= 10 min)"
        )
        ok &= rebuilt * scale <= 600
        # What autovacuum does soon after a rebuild: statistics, and the visibility map
        # that lets the count of distinct customers read the index alone.
        async with database.autocommit() as session:
            for table in ("analytics_conversations", "analytics_hourly"):
                await session.execute(text(f"VACUUM ANALYZE {table}"))

        print(f"\nqueries ({args.repetitions} each; server time in ms)")
        for name, times in await queries(database, organisation_id, args.repetitions):
            p50, p95 = _p(times, 0.5) * 1000, _p(times, 0.95) * 1000
            goal = (
                "" if name.startswith("baseline") else ("  ok" if p95 <= 200 else "  OVER 200 ms")
            )
            if not name.startswith("baseline"):
                ok &= p95 <= 200
            print(f"  {name:42} p50 {p50:8.1f}  p95 {p95:8.1f}{goal}")

        exported = await export(database, organisation_id, args.export_days)
        rate = exported["rows"] / exported["seconds"]
        rss = [r / 2**20 for r in exported["rss"]]
        growth = (max(rss) - min(rss)) if rss else 0.0
        print(
            f"\nexport of {args.export_days} days: {exported['rows']:,} rows,"
            f" {exported['bytes'] / 2**20:.1f} MiB in {exported['seconds']:.1f} s ="
            f" {rate:,.0f} rows/s (goal >= 50,000); resident memory per tenth"
            f" {', '.join(f'{r:.0f}' for r in rss)} MiB (growth {growth:.1f} MiB)"
        )
        ok &= rate >= 50_000
    finally:
        await database.dispose()
    return ok


def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="cybergine-bench-analytics-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    data_dir = workdir / "data"
    data_dir.mkdir()
    keys.install(
        keys.ServerKeys(
            secret_key=keys.generate_secret_key().encode(),
            encryption_keys=(keys.generate_fernet_key(),),
        )
    )
    url = embedded.start(data_dir).url
    migrate.upgrade(url)
    ok = asyncio.run(run(url, args))
    print(
        f"\nhost: {host.node()} {host.machine()}, {os.cpu_count()} cores; load average before"
        f" the run {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}"
    )
    print(f"total run time {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=10, help="per conversation")
    parser.add_argument("--repetitions", type=int, default=20, help="per query")
    parser.add_argument("--export-days", type=int, default=30)
    sys.exit(main(parser.parse_args()))
