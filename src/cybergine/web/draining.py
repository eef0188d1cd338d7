"""Stopping the web process without dropping anyone.

On the first SIGTERM (or SIGINT) the process starts *draining*: ``/readyz`` answers
503 so a load balancer takes it out of rotation, while everything else is still served
for ``CYBERGINE_SHUTDOWN_DRAIN_SECONDS``. Then it stops accepting connections, ends
what would otherwise hold the shutdown open (widget long polls answer at once, the
inbox's event streams end, and uvicorn closes WebSockets with code 1012, "service
restart", which the widget answers by reconnecting), and lets requests in flight finish
for up to ``CYBERGINE_SHUTDOWN_TIMEOUT_SECONDS`` before cutting them off. A second
signal skips the drain wait; a second SIGINT during the shutdown forces it.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from socket import socket
from types import FrameType

import structlog
import uvicorn

from cybergine.web.closing import ClosingServer

log = structlog.get_logger(__name__)


class Lifecycle:
    """What the app knows of its own stopping: ``app.state.lifecycle``."""

    def __init__(self) -> None:
        self.draining_since: float | None = None  # time.monotonic()
        self.closing = False
        self._on_close: list[Callable[[], None]] = []

    @property
    def draining(self) -> bool:
        return self.draining_since is not None

    def start_draining(self) -> None:
        if self.draining_since is None:
            self.draining_since = time.monotonic()

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the server stops accepting (the hub wakes its waiters)."""
        self._on_close.append(callback)

    def close(self) -> None:
        """The server stops accepting: what waits for news must answer now."""
        self.start_draining()
        self.closing = True
        for callback in self._on_close:
            callback()


class GracefulServer(ClosingServer):
    """Uvicorn's server with the drain period in front of its graceful shutdown
    (``web.closing``)."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain_seconds: float) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.drain_seconds = drain_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.lifecycle.draining or self.drain_seconds <= 0:
            super().handle_exit(sig, frame)
            if not self.lifecycle.draining:
                self.lifecycle.start_draining()
                log.info("draining", drain_seconds=0, signal=signal.Signals(sig).name)
            return
        # Remembered as uvicorn does, so the signal is raised again once it has stopped.
        self._captured_signals.append(sig)
        self.lifecycle.start_draining()
        log.info("draining", drain_seconds=self.drain_seconds, signal=signal.Signals(sig).name)

    async def on_tick(self, counter: int) -> bool:
        since = self.lifecycle.draining_since
        if since is not None and time.monotonic() - since >= self.drain_seconds:
            self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket] | None = None) -> None:
        started = time.monotonic()
        self.lifecycle.close()
        await super().shutdown(sockets)
        log.info("stopped", shutdown_seconds=round(time.monotonic() - started, 3))


__all__ = ["GracefulServer", "Lifecycle"]
