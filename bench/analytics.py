"""Analytics' numbers: the API's answers and the aggregates' rebuild over a year of one
busy organisation.

One embedded PostgreSQL in a temporary directory, migrated to head, holds one
organisation with ``--conversations`` conversations and ``--messages`` messages each
over the last 365 days, seeded with set-based SQL (``bench/analytics_seeds.py``). Then:

rebuild: ``analytics.rebuild.rebuild`` of the 12 months (what ``cybergine analytics
rebuild`` runs), timed. Goal: <= 10 minutes at 1,000,000 conversations.

queries: the services the API routes and the Analytics pages call, each in its own
transaction as a request's, ``--repetitions`` times: the summary (with the embedding
usage the API adds) over the last 30 days, 90 days and 12 months, ``timeseries`` by day
over 12 months and by hour over 30 days, the response-time distribution and the
hours-of-week heatmap over 12 months (what the page adds), and the top questions and
knowledge gaps reports over 30 days and 12 months (``--gap-groups`` groups of every
conversation's first question, answered from a source, and of the question before each
fallback, ``GAPS`` in the seeds); p50 and p95 server time. Goal: p95 <= 200 ms.
Baseline, in the same run: the 30-day summary's headline counts computed straight from
the raw rows (``definitions.conversation_metrics``), which is what the aggregates spare
each request.

refresh: ``rollups.refresh`` after ``--refresh-changes`` conversations of yesterday (UTC)
were closed, ``--refresh-rounds`` times, each with other conversations: what the job
does after a burst of changes, moving the aggregates by the changed rows' difference.
Baseline, alternating with it in the same run: the same conversations' rows recomputed,
then yesterday's aggregates cleared and summed again from all its rows (``sums.clear``
and ``sums.add``, a rebuild's statements for one day): the work of a refresh that sums
the changed days again instead of moving them by the difference.

export: the CSV export's generator (``analytics.api._csv_chunks``, what the route
streams) over the last ``--export-days`` days, drained: rows/s, and this process's
resident memory at each tenth of the rows. Goal: >= 50,000 rows/s with flat memory.

``--data-dir DIR`` keeps the database in DIR (made if missing): a later run with the same
DIR seeds and rebuilds nothing and runs no migration, so the questions can be timed again,
e.g. by the previous commit's code (``PYTHONPATH=<its src>``) beside the current one.
``--only queries`` times the questions alone, ``--only refresh`` the refresh.

Usage: .venv/bin/python bench/analytics.py [--conversations 1000000] [--messages 10]
       [--repetitions 20] [--export-days 30] [--gap-groups 300] [--refresh-changes 100]
       [--refresh-rounds 5] [--data-dir DIR] [--only queries|refresh]
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

import cybergine
from analytics_seeds import GAPS, SEED
from cybergine.analytics import api as analytics_api
from cybergine.analytics import (
    days,
    definitions,
    distributions,
    embedding_usage,
    facts,
    question_report,
    rebuild,
    rollups,
    service,
    sums,
)
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


SHOP = "Analytics Shop"


async def seeded_organisation(database: Database) -> uuid.UUID | None:
    """The organisation an earlier run seeded in this database, if any."""
    async with database.transaction() as session:
        found: uuid.UUID | None = await session.scalar(
            text("SELECT id FROM organisations WHERE name = :name"), {"name": SHOP}
        )
    return found


async def seed(database: Database, args: argparse.Namespace) -> dict[str, Any]:
    parameters = {
        "org": uuid.uuid4(),
        "assistant_a": uuid.uuid4(),
        "assistant_b": uuid.uuid4(),
        "conversations": args.conversations,
        "messages": args.messages,
        "days": DAYS,
        "groups": args.gap_groups,
    }
    for statement in [*SEED, *GAPS]:
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
        async def work(s: Any) -> None:
            # What the API's summary reads: the figures and breakdowns, and the embedding
            # usage beside the answers' model usage.
            await service.summary(TenantScope(s, organisation_id), _filters(days))
            await embedding_usage.usage_rows(s, organisation_id, _filters(days))

        return work

    def series(days: int, interval: Interval) -> Any:
        return lambda s: service.timeseries(
            TenantScope(s, organisation_id), _filters(days), interval
        )

    def scoped(call: Any, days: int) -> Any:
        return lambda s: call(TenantScope(s, organisation_id), _filters(days))

    cases = [
        ("summary, 30 days", summary(30)),
        ("summary, 90 days", summary(90)),
        ("summary, 12 months", summary(365)),
        ("timeseries by day, 12 months", series(365, Interval.DAY)),
        ("timeseries by hour, 30 days", series(30, Interval.HOUR)),
        ("response times, 12 months", scoped(distributions.response_times, 365)),
        ("hours of week, 12 months", scoped(distributions.hours_of_week, 365)),
        ("top questions, 30 days", scoped(question_report.top_questions, 30)),
        ("top questions, 12 months", scoped(question_report.top_questions, 365)),
        ("knowledge gaps, 30 days", scoped(question_report.knowledge_gaps, 30)),
        ("knowledge gaps, 12 months", scoped(question_report.knowledge_gaps, 365)),
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
        kept = await seeded_organisation(database)
        if kept is not None:
            print(f"the database of an earlier run: organisation {kept}, nothing seeded")
            organisation_id = kept
        else:
            print(f"seeding {args.conversations:,} conversations, {args.messages} messages each")
            organisation_id = (await seed(database, args))["org"]
        if kept is None and args.only is None:
            ok &= await rebuilt(database, organisation_id, args)
        if args.only in (None, "queries"):
            ok &= await timed_queries(database, organisation_id, args)
        if args.only in (None, "refresh"):
            await refreshed(database, organisation_id, args)
        if args.only is None:
            ok &= await exported(database, organisation_id, args)
    finally:
        await database.dispose()
    return ok


async def refreshed(
    database: Database, organisation_id: uuid.UUID, args: argparse.Namespace
) -> None:
    day = days.day_of(datetime.now(UTC)) - days.DAY
    async with database.transaction() as session:
        ids = list(
            await session.scalars(
                text(
                    "SELECT id FROM conversations WHERE organisation_id = :o"
                    " AND created_at >= :day AND created_at < :day + interval '1 day'"
                    " AND state <> 'closed' ORDER BY id"
                ),
                {"o": organisation_id, "day": day},
            )
        )
        found = await session.scalar(
            text(
                "SELECT count(*) FROM analytics_conversations WHERE organisation_id = :o"
                " AND started_at >= :day AND started_at < :day + interval '1 day'"
            ),
            {"o": organisation_id, "day": day},
        )
    timings: dict[str, list[float]] = {"refresh": [], "baseline": []}
    for round_ in range(args.refresh_rounds):
        chosen = ids[round_ * args.refresh_changes : (round_ + 1) * args.refresh_changes]
        async with database.transaction() as session:
            await session.execute(
                text(
                    "UPDATE conversations SET state = 'closed', closed_at = now(),"
                    " updated_at = now() WHERE id = ANY(:ids)"
                ),
                {"ids": chosen},
            )
        started = time.perf_counter()
        async with database.transaction() as session:
            await rollups.refresh(session, organisation_id, rollups.measure_now(IDLE_HOURS))
        timings["refresh"].append(time.perf_counter() - started)
        started = time.perf_counter()
        async with database.transaction() as session:
            await facts.write_conversations(
                session, organisation_id, chosen, rollups.measure_now(IDLE_HOURS).parameters
            )
            await sums.clear(session, organisation_id, day, day + days.DAY)
            await sums.add(
                session, organisation_id, sums.Rows.IN_PERIOD, {"start": day, "end": day + days.DAY}
            )
        timings["baseline"].append(time.perf_counter() - started)
    print(
        f"\nrefresh after {args.refresh_changes} of yesterday's {found:,} conversations"
        f" closed ({args.refresh_rounds} rounds; ms):"
    )
    for name, times in timings.items():
        label = "refresh" if name == "refresh" else "baseline: rows, then the day summed again"
        print(f"  {label:42} p50 {_p(times, 0.5) * 1000:8.1f}  max {max(times) * 1000:8.1f}")


async def rebuilt(database: Database, organisation_id: uuid.UUID, args: argparse.Namespace) -> bool:
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
    # What autovacuum does soon after a rebuild: statistics, and the visibility map
    # that lets the count of distinct customers read the index alone.
    async with database.autocommit() as session:
        for table in (
            "analytics_conversations",
            "analytics_hourly",
            "knowledge_gap_days",
            "knowledge_gap_months",
        ):
            await session.execute(text(f"VACUUM ANALYZE {table}"))
    return rebuilt * scale <= 600


async def timed_queries(
    database: Database, organisation_id: uuid.UUID, args: argparse.Namespace
) -> bool:
    ok = True
    print(f"\nqueries ({args.repetitions} each; server time in ms)")
    for name, times in await queries(database, organisation_id, args.repetitions):
        p50, p95 = _p(times, 0.5) * 1000, _p(times, 0.95) * 1000
        goal = "" if name.startswith("baseline") else ("  ok" if p95 <= 200 else "  OVER 200 ms")
        if not name.startswith("baseline"):
            ok &= p95 <= 200
        print(f"  {name:42} p50 {p50:8.1f}  p95 {p95:8.1f}{goal}")
    return ok


async def exported(
    database: Database, organisation_id: uuid.UUID, args: argparse.Namespace
) -> bool:
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
    return bool(rate >= 50_000)


def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    load_before = os.getloadavg()
    if args.data_dir is not None:
        data_dir = Path(args.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="cybergine-bench-analytics-"))
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
        data_dir = workdir / "data"
        data_dir.mkdir()
    fresh = not (data_dir / "postgres" / "PG_VERSION").exists()
    keys.install(
        keys.ServerKeys(
            secret_key=keys.generate_secret_key().encode(),
            encryption_keys=(keys.generate_fernet_key(),),
        )
    )
    url = embedded.start(data_dir).url
    if fresh:  # a kept database is left at its revision, whichever code reads it
        migrate.upgrade(url)
    print(f"code: {Path(cybergine.__file__).parent}")
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
    parser.add_argument("--gap-groups", type=int, default=300, help="knowledge gap groups")
    parser.add_argument("--refresh-changes", type=int, default=100, help="per refresh")
    parser.add_argument("--refresh-rounds", type=int, default=5)
    parser.add_argument("--data-dir", help="keep the database here, reuse it if present")
    parser.add_argument(
        "--only", choices=["queries", "refresh"], help="time the questions or the refresh alone"
    )
    sys.exit(main(parser.parse_args()))
