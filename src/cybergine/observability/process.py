"""Where a process keeps its metric values, so that one ``/metrics`` answers for every
process of its host.

Prometheus' Python client has a multiprocess mode: each process writes its values to
memory-mapped files of its own (named by its pid) in one directory, and whoever serves
``/metrics`` adds them up when asked. Cybergine manages that directory:
``CYBERGINE_METRICS_DIR`` (default ``<data dir>/metrics``), set for the client by
``prepare`` when ``cybergine serve`` or ``cybergine worker`` starts. The web process of
a host then reports its own requests and sockets and the jobs, replies and model calls
of every worker on the same host that shares the directory. On a host with no web
process, ``cybergine worker`` serves the directory itself
(``CYBERGINE_WORKER_METRICS_PORT``, ``worker_endpoint``).

A process' increments reach its files once a second (``buffered``), so that recording
costs a request a fraction of a microsecond; ``/metrics`` flushes its own process first.

On start, a process removes what no running process owns: the live gauges (open
sockets, connections in use) of processes that are gone, and, when no process that
wrote to the directory still runs, every file (counters then start again from zero,
which Prometheus' ``rate()`` understands as a restart).

Without ``prepare`` (tests, ``create_app`` in a process of one's own), values live in
the process' memory and ``/metrics`` serves them alone.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

import psutil
from prometheus_client import multiprocess, values

from cybergine.observability import metrics
from cybergine.observability.buffered import BufferedValues
from cybergine.settings import Settings

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_SECONDS = 1.0
_LIVE_PREFIX = "gauge_live"
_buffer: BufferedValues | None = None


def directory_of(settings: Settings) -> Path:
    return settings.metrics_dir or settings.data_dir / "metrics"


def shared_directory() -> Path | None:
    """The directory this process' values are kept in, when ``prepare`` chose one."""
    value = os.environ.get(ENVIRONMENT_VARIABLE)
    return Path(value) if value else None


def prepare(settings: Settings, role: str) -> Path | None:
    """Call at the start of a process, before anything is recorded: ``role`` is ``web``
    or ``worker``. Returns the shared directory (None: metrics are off)."""
    metrics.set_process(role)
    metrics.enable(settings.metrics)
    if not settings.metrics:
        return None
    if metrics.any_recorded():
        raise RuntimeError("a metric was recorded before its process chose where values live")
    directory = directory_of(settings)
    directory.mkdir(parents=True, exist_ok=True)
    forget_gone_processes(directory)
    os.environ[ENVIRONMENT_VARIABLE] = str(directory)
    global _buffer
    _buffer = BufferedValues(values.MultiProcessValue(), period=FLUSH_SECONDS)  # type: ignore[no-untyped-call]
    # The client reads the variable when it is imported; it may have been already.
    values.ValueClass = _buffer.value_class()
    _buffer.start()
    atexit.register(multiprocess.mark_process_dead, os.getpid(), str(directory))
    atexit.register(_buffer.stop)  # runs first: the last values reach the files
    return directory


def flush() -> None:
    """This process' values, written to the shared files now (before a scrape)."""
    if _buffer is not None:
        _buffer.flush()


def forget_gone_processes(directory: Path) -> None:
    """Removes the live gauges of processes that no longer run; every file, when none of
    the processes that wrote them runs any more."""
    me = os.getpid()
    owners: dict[Path, int] = {}
    for path in directory.glob("*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit():
            owners[path] = int(pid)
    alive = {owner for owner in set(owners.values()) if owner != me and psutil.pid_exists(owner)}
    for path, owner in owners.items():
        # A file named with this process' pid is a previous process' (a container's pid 1).
        stale = owner not in alive
        if stale and (not alive or path.name.startswith(_LIVE_PREFIX)):
            path.unlink(missing_ok=True)
