"""Sliding-window rate limits kept in the web process's memory.

Per process: with several web processes behind a load balancer a client may get up to
that many times the limit, which is still a limit; a shared counter would cost a database
write per widget message. Old keys are dropped as they expire, so memory stays bounded
by the number of active clients.
"""

from __future__ import annotations

import time
from collections import deque


class SlidingWindow:
    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._hits: dict[str, deque[float]] = {}
        self._last_sweep = time.monotonic()

    def hit(self, key: str) -> float | None:
        """Count one hit; None when allowed, else the seconds until one is."""
        now = time.monotonic()
        if now - self._last_sweep > self.seconds:
            self._sweep(now)
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.seconds:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(0.0, hits[0] + self.seconds - now)
        hits.append(now)
        return None

    def _sweep(self, now: float) -> None:
        for key in [
            k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.seconds
        ]:
            del self._hits[key]
        self._last_sweep = now
