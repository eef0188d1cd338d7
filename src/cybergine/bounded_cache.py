"""A small in-process cache with a size bound and a time to live.

For what a public endpoint looks up on every request: anyone can make it look up new
keys, so the cache must never grow past ``capacity`` (the least recently used entry goes
first) and a stale entry must not outlive ``ttl_seconds``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    def __init__(self, *, capacity: int, ttl_seconds: float) -> None:
        if capacity < 1:
            raise ValueError("a cache holds at least one entry")
        self._capacity = capacity
        self._ttl = ttl_seconds
        # Least recently used first.
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        """The value kept for ``key``, if it has not expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (time.monotonic() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)
