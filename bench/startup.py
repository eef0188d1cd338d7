"""Start-up time and idle memory of `cybergine serve` in embedded mode.

Prints, for one run on this machine:
- first start: a fresh data directory (initdb + migrations + server ready to serve /readyz);
- warm start: the same directory again (PostgreSQL already initialised, stopped);
- idle memory (PSS) of the server process and of the PostgreSQL processes it started;
- baseline measured in the same run: a bare Uvicorn app that answers one route.

Usage: .venv/bin/python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

BIN = Path(sys.executable).parent
BASELINE_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def healthz(request):
    return JSONResponse({"status": "ok"})

app = Starlette(routes=[Route("/healthz", healthz)])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"{url} not ready after {timeout}s")


def rss_mib(pids: list[int]) -> float:
    """Memory of a group of processes. PSS, not RSS: PostgreSQL's backends share
    their buffers, and adding up RSS would count that memory once per process."""
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += psutil.Process(pid).memory_full_info().pss
    return total / 2**20


def postgres_pids(pgdata: Path) -> list[int]:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return []
    master = psutil.Process(int(pid_file.read_text().splitlines()[0]))
    return [master.pid, *(child.pid for child in master.children(recursive=True))]


def run_cybergine(data_dir: Path) -> tuple[float, float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYBERGINE_")}
    env.update(CYBERGINE_DATA_DIR=str(data_dir), CYBERGINE_LOG_LEVEL="WARNING")
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "cybergine"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        seconds = wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        time.sleep(3)  # let the in-process worker and pools settle to idle
        server = rss_mib([process.pid])
        database = rss_mib(postgres_pids(data_dir / "postgres"))
        return seconds, server, database
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def run_baseline(workdir: Path) -> tuple[float, float]:
    (workdir / "baseline_app.py").write_text(BASELINE_APP)
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "uvicorn"), "baseline_app:app", "--port", str(port), "--log-level", "warning"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        seconds = wait_ready(f"http://127.0.0.1:{port}/healthz", process)
        time.sleep(1)
        return seconds, rss_mib([process.pid])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    first, warm, server_rss, pg_rss, base_start, base_rss = [], [], [], [], [], []
    for _ in range(args.runs):
        workdir = Path(tempfile.mkdtemp(prefix="cybergine-bench-"))
        try:
            seconds, _, _ = run_cybergine(workdir / "data")
            first.append(seconds)
            seconds, server, database = run_cybergine(workdir / "data")
            warm.append(seconds)
            server_rss.append(server)
            pg_rss.append(database)
            seconds, rss = run_baseline(workdir)
            base_start.append(seconds)
            base_rss.append(rss)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    med = statistics.median
    print(f"runs: {args.runs} (medians)")
    print(f"{'measure':<44}{'cybergine':>12}{'baseline':>12}")
    print(f"{'first start to /readyz 200 (s)':<44}{med(first):>12.2f}{med(base_start):>12.2f}")
    print(f"{'warm start to /readyz 200 (s)':<44}{med(warm):>12.2f}{'':>12}")
    print(f"{'server memory at idle, PSS (MiB)':<44}{med(server_rss):>12.1f}{med(base_rss):>12.1f}")
    print(f"{'embedded PostgreSQL at idle, PSS (MiB)':<44}{med(pg_rss):>12.1f}{'':>12}")


if __name__ == "__main__":
    main()
