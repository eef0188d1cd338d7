"""Runs an ASGI app under uvicorn in a background thread, on a free port."""

from __future__ import annotations

import socket
import ssl
from types import TracebackType

import httpx
from starlette.types import ASGIApp

from cybergine.web.threaded import ThreadedServer

# httpx builds a TLS context for every client it makes, loading the CA bundle (tens of
# milliseconds, a hundred on a busy machine), though these clients speak plain HTTP to local
# servers. One context, made once, verifies exactly as each new one would.
TLS = ssl.create_default_context()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer(ThreadedServer):
    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, name="test server")
        self.app = app  # for tests that wait on its state (its hub's subscribers)

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, verify=TLS, **kwargs)  # type: ignore[arg-type]
