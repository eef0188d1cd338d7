"""What ``/metrics`` costs the webhook ingest: ``bench/whatsapp.py --metrics-rounds N``.

Each round runs the ingest twice on one ``cybergine serve``, restarted between the runs
with ``CYBERGINE_METRICS=on`` and ``=off`` (the order alternates from round to round, so
the shared machine's drift touches both alike). With metrics on, a scraper reads
``/metrics`` every ``--metrics-scrape-seconds`` (default 1 s, fifteen times Prometheus'
usual pace) for the whole run. The cost is judged by the median over the rounds of each
round's ratio (its two runs are neighbours in time), for throughput and for the web
process' CPU per delivery.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from typing import Any

import httpx

from load import WEB


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


def _restart_web(platform: Any) -> None:
    """A new web process with the platform's environment now; the API client follows."""
    platform.start_web()
    platform.stop_web(0)
    platform.api.base_url = f"http://127.0.0.1:{platform.web[0][1]}"


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
    one web process running with the default settings, as it found it. Each web process
    starts before the last one stops, so the embedded PostgreSQL keeps running."""
    rows: list[Any] = []
    rate_ratios: list[float] = []
    cpu_ratios: list[float] = []
    scrapes = failures = 0
    last = ""
    tag = 30
    for round_ in range(args.metrics_rounds):
        order = ("on", "off") if round_ % 2 == 0 else ("off", "on")
        rates: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for variant in order:
            tag += 1
            platform.env["CYBERGINE_METRICS"] = variant
            _restart_web(platform)
            scraper = (
                Scraper(platform.web[0][1], args.metrics_scrape_seconds)
                if variant == "on"
                else None
            )
            try:
                row = run_ingest(platform, sim, args, secret=secret, tag=tag)
            finally:
                if scraper is not None:
                    scraper.stop()
                    scrapes += scraper.scrapes
                    failures += scraper.failures
                    last = scraper.last or last
            row.label = f"metrics {variant}, round {round_ + 1}"
            rows.append(row)
            rates[variant] = row.load.rate
            cpu[variant] = 1000 * row.load.cpu.seconds.get(WEB, 0.0) / row.load.n
        rate_ratios.append(rates["on"] / rates["off"])
        cpu_ratios.append(cpu["on"] / cpu["off"])
    platform.env.pop("CYBERGINE_METRICS", None)
    _restart_web(platform)

    on = [r.load.rate for r in rows if r.label.startswith("metrics on")]
    off = [r.load.rate for r in rows if r.label.startswith("metrics off")]
    rate_cost = 100 * (1 - _median(rate_ratios))
    cpu_cost = 100 * (_median(cpu_ratios) - 1)
    print(
        f"\n/metrics cost on the ingest, {args.metrics_rounds} rounds of one run with"
        f" CYBERGINE_METRICS=on and one with =off (alternating order), one web process,"
        f" scraped every {args.metrics_scrape_seconds:g} s while on ({scrapes} scrapes,"
        f" {failures} failed):"
    )
    print(f"  deliveries/s, median: on {_median(on):.0f}, off {_median(off):.0f}")
    print(
        f"  throughput cost (1 - median of each round's on/off ratio): {rate_cost:.1f}%;"
        f" rounds' ratios {', '.join(f'{r:.3f}' for r in rate_ratios)}"
    )
    print(
        f"  web CPU per delivery (median of each round's on/off ratio - 1): {cpu_cost:.1f}%;"
        f" rounds' ratios {', '.join(f'{r:.3f}' for r in cpu_ratios)}"
    )
    accepted = [
        line for line in last.splitlines() if line.startswith("cybergine_webhook_deliveries_total")
    ]
    print(
        f"  last scrape: {len(last.splitlines())} lines;"
        f" {'; '.join(accepted) or 'NO webhook series'}"
    )
    print(f"  goal: at most 3% — {'met' if max(rate_cost, 0) <= 3 else 'MISSED'} (throughput)")
    return rows
