"""Uvicorn's server with a shutdown that closes every connection, whatever state each is
in: the web process (``web.draining``) and the in-process servers (``web.threaded``).

Uvicorn asks each open connection to shut down, and its WebSocket protocol answers with
a close frame, "service restart" (1012). A peer that has begun the closing handshake
while the server still had bytes for it (a widget's page closing while a message was on
its way) keeps its connection open until they are written, and the websockets library
refuses a second close frame on it: the exception ended uvicorn's shutdown there, so the
connections after it were never asked to close and the app's lifespan shutdown never
ran (tests/web/test_server_shutdown.py). That connection is closing anyway: it is closed.

The shutdown then waits for connections and tasks to finish (up to the graceful timeout,
as uvicorn's), polling briefly instead of sleeping a fixed 0.1 s first.
"""

from __future__ import annotations

import asyncio
import socket

import structlog
import uvicorn
from websockets.exceptions import InvalidState

log = structlog.get_logger(__name__)

_DRAIN_POLL_SECONDS = 0.005


class ClosingServer(uvicorn.Server):
    """Uvicorn's server with the shutdown of the module's docstring."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            try:
                connection.shutdown()
            except InvalidState:  # its peer is closing it: see the module's docstring
                connection.transport.close()
        loop = asyncio.get_running_loop()
        graceful = self.config.timeout_graceful_shutdown
        deadline = loop.time() + graceful if graceful is not None else float("inf")
        state = self.server_state
        while (state.connections or state.tasks) and not self.force_exit:
            if loop.time() >= deadline:
                log.warning("shutdown_timeout", cancelled_tasks=len(state.tasks))
                for task in state.tasks:
                    task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
                break
            await asyncio.sleep(_DRAIN_POLL_SECONDS)
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()
