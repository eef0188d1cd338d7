"""What ``/metrics`` costs the webhook ingest: ``bench/whatsapp.py --metrics-rounds N``.

Two ``cybergine serve`` processes run side by side on the same data directory, one with
``CYBERGINE_METRICS=on`` (read by a scraper every ``--metrics-scrape-seconds``, default
1 s, fifteen times Prometheus' usual pace) and one with ``=off``; the load generator sends
request k to process k mod 2, so both serve the same deliveries at the same moments and
whatever else runs on the machine touches both alike (on a shared machine, runs one after
the other differ by more than the cost measured). Each round is one ingest run; the two
processes swap places from round to round. The cost is the web process' CPU time per
delivery with metrics on over that with them off, the median over the rounds.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psutil


class Scraper:
    """Reads ``/metrics`` at a steady pace from a thread, as Prometheus would."""

    def __init__(self, port: int, every: float) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.every = every
        self.scrapes = 0
        self.failures = 0
        self.seconds: list[float] = []  # each answered scrape's time, request to body
        self.last = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-scraper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.wait(self.every):
                started = time.perf_counter()
                try:
                    response = http.get(self.url)
                except httpx.HTTPError:
                    self.failures += 1
                    continue
                if response.status_code == 200:
                    self.scrapes += 1
                    self.seconds.append(time.perf_counter() - started)
                    self.last = response.text
                else:
                    self.failures += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _start_web(platform: Any, env: dict[str, str]) -> tuple[Any, int]:
    saved = dict(platform.env)
    platform.env.update(env)
    platform.start_web()
    platform.env.clear()
    platform.env.update(saved)
    return platform.web[-1]


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass
class SideBySide:
    rows: list[Any]
    ratios: list[float]  # each round's CPU per delivery, on over off
    per_delivery: dict[str, list[float]]  # CPU ms per delivery of each round, "on"/"off"

    @property
    def cost(self) -> float:
        """The median of the rounds' on/off ratios, minus one, in %."""
        return 100 * (_median(self.ratios) - 1)

    def summary(self) -> str:
        return (
            f"  web CPU ms per delivery, median: on {_median(self.per_delivery['on']):.3f},"
            f" off {_median(self.per_delivery['off']):.3f}\n"
            f"  cost (median of each round's on/off ratio - 1): {self.cost:.1f}%;"
            f" rounds' ratios {', '.join(f'{r:.3f}' for r in self.ratios)}"
        )


def side_by_side(
    platform: Any,
    sim: Any,
    args: argparse.Namespace,
    *,
    secret: str,
    run_ingest: Callable[..., Any],
    rounds: int,
    on_env: dict[str, str],
    off_env: dict[str, str],
    what: str,
    started: Callable[[int], None] = lambda port: None,
    ended: Callable[[], None] = lambda: None,
) -> SideBySide:
    """Rounds of one ingest run shared by two web processes, one started with ``on_env``
    and one with ``off_env`` (``started`` is told the first one's port, ``ended`` that the
    rounds are over). Leaves one web process running with the default settings, as it
    found it."""
    on = _start_web(platform, on_env)
    off = _start_web(platform, off_env)
    platform.stop_web(0)  # the one main started: only the two measured serve
    started(on[1])
    measured = SideBySide([], [], {"on": [], "off": []})
    try:
        for round_ in range(rounds):
            # Even requests go to the first process; the API calls to it as well.
            platform.web[:] = [on, off] if round_ % 2 == 0 else [off, on]
            platform.api.base_url = f"http://127.0.0.1:{platform.web[0][1]}"
            processes = (("on", on), ("off", off))
            before = {name: _cpu_seconds(proc.pid) for name, (proc, _) in processes}
            row = run_ingest(platform, sim, args, secret=secret, tag=31 + round_)
            deliveries = (args.deliveries + args.warmup) / 2
            cpu = {
                name: (_cpu_seconds(proc.pid) - before[name]) / deliveries
                for name, (proc, _) in processes
            }
            for name in cpu:
                measured.per_delivery[name].append(1000 * cpu[name])
            measured.ratios.append(cpu["on"] / cpu["off"])
            row.label = f"{what} on+off, round {round_ + 1}"
            measured.rows.append(row)
    finally:
        ended()
    platform.start_web()
    platform.stop_web(0)
    platform.stop_web(0)
    platform.api.base_url = f"http://127.0.0.1:{platform.web[0][1]}"
    return measured


def run_rounds(
    platform: Any,
    sim: Any,
    args: argparse.Namespace,
    *,
    secret: str,
    run_ingest: Callable[..., Any],
) -> list[Any]:
    """The ingest runs of every round (their rows), after printing the verdict."""
    scrapers: list[Scraper] = []

    def stop_scraping() -> None:
        for scraper in scrapers:
            scraper.stop()

    measured = side_by_side(
        platform,
        sim,
        args,
        secret=secret,
        run_ingest=run_ingest,
        rounds=args.metrics_rounds,
        on_env={"CYBERGINE_METRICS": "on"},
        off_env={"CYBERGINE_METRICS": "off"},
        what="metrics",
        started=lambda port: scrapers.append(Scraper(port, args.metrics_scrape_seconds)),
        ended=stop_scraping,
    )
    [scraper] = scrapers
    cost = measured.cost
    print(
        f"\n/metrics cost on the ingest: {args.metrics_rounds} rounds, two web processes side by"
        f" side (CYBERGINE_METRICS=on and =off) sharing each run's deliveries equally; the"
        f" one with metrics scraped every {args.metrics_scrape_seconds:g} s"
        f" ({scraper.scrapes} scrapes, {scraper.failures} failed)"
    )
    print(measured.summary())
    accepted = [
        line
        for line in scraper.last.splitlines()
        if line.startswith("cybergine_webhook_deliveries_total")
    ]
    if scraper.seconds:
        ordered = sorted(scraper.seconds)
        print(
            f"  a scrape's time: median {1000 * ordered[len(ordered) // 2]:.1f} ms,"
            f" max {1000 * ordered[-1]:.1f} ms"
        )
    print(
        f"  last scrape: {len(scraper.last.splitlines())} lines;"
        f" {'; '.join(accepted) or 'NO webhook series'}"
    )
    print(f"  goal: at most 3% — {'met' if cost <= 3 else 'MISSED'}")
    return measured.rows
