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
from collections.abc import Callable
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
        self.last = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-scraper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.wait(self.every):
                try:
                    response = http.get(self.url)
                except httpx.HTTPError:
                    self.failures += 1
                    continue
                if response.status_code == 200:
                    self.scrapes += 1
                    self.last = response.text
                else:
                    self.failures += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _start_web(platform: Any, metrics: str) -> tuple[Any, int]:
    platform.env["CYBERGINE_METRICS"] = metrics
    platform.start_web()
    return platform.web[-1]


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def run_rounds(
    platform: Any,
    sim: Any,
    args: argparse.Namespace,
    *,
    secret: str,
    run_ingest: Callable[..., Any],
) -> list[Any]:
    """The ingest runs of every round (their rows), after printing the verdict. Leaves
    one web process running with the default settings, as it found it."""
    on = _start_web(platform, "on")
    off = _start_web(platform, "off")
    platform.env.pop("CYBERGINE_METRICS", None)
    platform.stop_web(0)  # the one main started: only the two measured serve
    scraper = Scraper(on[1], args.metrics_scrape_seconds)
    rows: list[Any] = []
    ratios: list[float] = []
    per_delivery: dict[str, list[float]] = {"on": [], "off": []}
    try:
        for round_ in range(args.metrics_rounds):
            # Even requests go to the first process; the API calls to it as well.
            platform.web[:] = [on, off] if round_ % 2 == 0 else [off, on]
            platform.api.base_url = f"http://127.0.0.1:{platform.web[0][1]}"
            before = {
                name: _cpu_seconds(proc.pid) for name, (proc, _) in (("on", on), ("off", off))
            }
            row = run_ingest(platform, sim, args, secret=secret, tag=31 + round_)
            cpu = {
                name: (_cpu_seconds(proc.pid) - before[name])
                / ((args.deliveries + args.warmup) / 2)
                for name, (proc, _) in (("on", on), ("off", off))
            }
            for name in cpu:
                per_delivery[name].append(1000 * cpu[name])
            ratios.append(cpu["on"] / cpu["off"])
            row.label = f"metrics on+off, round {round_ + 1}"
            rows.append(row)
    finally:
        scraper.stop()
    platform.start_web()
    platform.stop_web(0)
    platform.stop_web(0)
    platform.api.base_url = f"http://127.0.0.1:{platform.web[0][1]}"

    cost = 100 * (_median(ratios) - 1)
    print(
        f"\n/metrics cost on the ingest: {args.metrics_rounds} rounds, two web processes side by"
        f" side (CYBERGINE_METRICS=on and =off) sharing each run's deliveries equally; the"
        f" one with metrics scraped every {args.metrics_scrape_seconds:g} s"
        f" ({scraper.scrapes} scrapes, {scraper.failures} failed)"
    )
    print(
        f"  web CPU ms per delivery, median: on {_median(per_delivery['on']):.3f},"
        f" off {_median(per_delivery['off']):.3f}"
    )
    print(
        f"  cost (median of each round's on/off ratio - 1): {cost:.1f}%;"
        f" rounds' ratios {', '.join(f'{r:.3f}' for r in ratios)}"
    )
    accepted = [
        line
        for line in scraper.last.splitlines()
        if line.startswith("cybergine_webhook_deliveries_total")
    ]
    print(
        f"  last scrape: {len(scraper.last.splitlines())} lines;"
        f" {'; '.join(accepted) or 'NO webhook series'}"
    )
    print(f"  goal: at most 3% — {'met' if cost <= 3 else 'MISSED'}")
    return rows
