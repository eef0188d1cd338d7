"""CPU priority: background work yields the processor to what someone is waiting on.

Where web processes and background work share a machine (`serve` and `worker` on one
host, a web process's document readers), the kernel shares the CPU by weight. At
niceness 10 a process weighs 110 against a web process's 1024: it runs on what the web
processes leave, and still has all of a CPU nobody else wants. Webhooks are acknowledged
and pages answered first while jobs catch up; on a host of its own, nothing changes.
Containers are cgroups of their own, between which a niceness orders nothing
(compose.yaml gives the workers a CPU weight instead), and `serve`'s embedded worker
shares its process's event loop, and so its priority.
"""

from __future__ import annotations

import os

BACKGROUND_NICENESS = 10


def lower_to(niceness: int) -> int:
    """Runs the calling process at ``niceness`` at least, and returns the niceness it
    has now. It never raises a priority (a niceness above the one asked for, given by
    whoever started the process, stays): that would take privileges.

    Call it before the process starts a thread. Linux keeps the value per thread: a
    thread takes its creator's when it is made, and one already running keeps its own.
    """
    if niceness > os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    return os.getpriority(os.PRIO_PROCESS, 0)
