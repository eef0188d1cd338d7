"""Memory of a server process and of the children it forks (extraction processes), for
tests and benchmarks that bound what one request may cost."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

import psutil

MIB = 1024 * 1024
_FORK_SERVER = "multiprocessing.forkserver"


def _is_fork_server(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return any(_FORK_SERVER in part for part in process.cmdline())
    return False


def fork_servers(root: int) -> list[psutil.Process]:
    """The multiprocessing fork servers started by ``root`` (or its descendants)."""
    try:
        descendants = psutil.Process(root).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in descendants if _is_fork_server(p)]


def extraction_children(root: int) -> list[psutil.Process]:
    """The children the fork servers of ``root`` are running (one per extraction)."""
    return children_of(fork_servers(root))


def children_of(servers: list[psutil.Process]) -> list[psutil.Process]:
    """The children of known fork servers, read from /proc/PID/task/PID/children: the
    watchers poll every few milliseconds, and a scan of every process (psutil's way) would
    take CPU from the niced extraction they measure, slowing it several times over."""
    found: list[psutil.Process] = []
    for server in servers:
        try:
            with open(f"/proc/{server.pid}/task/{server.pid}/children") as listing:
                pids = [int(pid) for pid in listing.read().split()]
        except OSError:
            continue
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                found.append(psutil.Process(pid))
    return found


def peak_rss(process: psutil.Process) -> int | None:
    """The most resident memory ``process`` has had (VmHWM), or None once it is gone."""
    try:
        with open(f"/proc/{process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


@dataclass
class MemoryWatch:
    """Samples, every few milliseconds, the resident memory of ``root`` and the peak of
    every extraction child seen. ``growth`` is the most any one process went above where
    it started: ``root`` above its RSS when the watch began, a child above the fork
    server it was forked from (what it shares with it at birth)."""

    root: int
    interval: float = 0.005
    root_start: int = 0
    root_peak: int = 0
    child_start: int = 0
    child_peaks: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MemoryWatch:
        self.root_start = self.root_peak = psutil.Process(self.root).memory_info().rss
        servers = fork_servers(self.root)
        self.child_start = max((s.memory_info().rss for s in servers), default=0)
        self._thread = threading.Thread(target=self._run, name="memory-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        root = psutil.Process(self.root)
        servers = fork_servers(self.root)
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.root_peak = max(self.root_peak, root.memory_info().rss)
            if not servers:
                servers = fork_servers(self.root)
            for child in children_of(servers):
                peak = peak_rss(child)
                if peak is not None:
                    self.child_peaks[child.pid] = max(self.child_peaks.get(child.pid, 0), peak)
            time.sleep(self.interval)

    @property
    def root_growth(self) -> int:
        return self.root_peak - self.root_start

    @property
    def child_growth(self) -> int:
        return max((peak - self.child_start for peak in self.child_peaks.values()), default=0)

    @property
    def growth(self) -> int:
        return max(self.root_growth, self.child_growth)
