"""Metric values that cost a request almost nothing in multiprocess mode.

The client's multiprocess value writes every increment through to its memory-mapped
file, under a lock, after asking the kernel for the process id: a few microseconds each,
several per request. Here an increment only adds to a number in memory (under one
uncontended lock); a thread of the process writes what accumulated to the files once a
``period`` (and ``/metrics`` flushes its own process first, so what it serves of itself is
exact; other processes' values are at most a period old).
"""

from __future__ import annotations

import threading
from typing import Any


class BufferedValues:
    def __init__(self, target_class: Any, period: float = 1.0) -> None:
        self._target_class = target_class
        self._period = period
        self._lock = threading.Lock()
        self._values: list[_BufferedValue] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def value_class(self) -> type:
        buffer = self

        class BufferedValue(_BufferedValue):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(buffer, buffer._target_class(*args, **kwargs))

        return BufferedValue

    def register(self, value: _BufferedValue) -> None:
        with self._lock:
            self._values.append(value)

    def flush(self) -> None:
        """Writes what accumulated since the last flush to the files."""
        with self._lock:
            due = [(value, value.pending) for value in self._values if value.pending]
            for value, _ in due:
                value.pending = 0.0
        for value, amount in due:
            value.target.inc(amount)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="metrics-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self.flush()


class _BufferedValue:
    _multiprocess = True

    def __init__(self, buffer: BufferedValues, target: Any) -> None:
        self.buffer = buffer
        self.target = target
        self.pending = 0.0
        buffer.register(self)

    def inc(self, amount: float) -> None:
        with self.buffer._lock:
            self.pending += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        self.buffer.flush()
        self.target.set(value, timestamp)

    def get(self) -> float:
        self.buffer.flush()
        value: float = self.target.get()
        return value

    def set_exemplar(self, exemplar: Any) -> None:
        self.target.set_exemplar(exemplar)

    def get_exemplar(self) -> Any:
        return self.target.get_exemplar()
