"""An ASGI app served by uvicorn from a daemon thread of this process: the Graph API
simulator (tests, benchmarks, the demo) and the tests' live servers.

The socket is bound here, on a port the OS picks, before uvicorn starts: parallel test
workers never race for a port.

It stops as soon as it is asked: uvicorn's own server notices a stop request on its next
0.1 s tick and then waits a fixed 0.1 s for connections to close, about 0.15 s for every
test that starts a server (most of them), where the connections are usually closed already.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from cybergine.web.closing import ClosingServer

_TICK_SECONDS = 0.1  # uvicorn's: on_tick refreshes the Date header every tenth tick


class _PromptServer(ClosingServer):
    """The web process's server (``web.closing``), woken by a stop request instead of
    polling for it."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None

    def request_stop(self) -> None:
        """From any thread: the server stops now rather than on its next tick."""
        self.should_exit = True  # set first: a loop starting now sees it on its first tick
        loop, stop_requested = self._loop, self._stop_requested
        if loop is not None and stop_requested is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(stop_requested.set)

    async def main_loop(self) -> None:
        self._stop_requested = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), _TICK_SECONDS)


class ThreadedServer:
    def __init__(
        self,
        app: ASGIApp,
        *,
        name: str = "server",
        lifespan: Literal["auto", "on", "off"] = "auto",
        graceful_seconds: int = 2,
    ) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan=lifespan,
            proxy_headers=False,  # as `cybergine serve`: the app judges forwarded headers
            # Open sockets (widgets, event streams) must not hold a shutdown for long.
            timeout_graceful_shutdown=graceful_seconds,
        )
        self.server = _PromptServer(config)
        self._thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self._socket]},
            name=f"{name}-{self.port}",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {self.name} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.request_stop()
        if self._thread.is_alive():
            self._thread.join(timeout=20)
        self._socket.close()
