"""Runs an ASGI app under uvicorn in a background thread, on a free port."""

from __future__ import annotations

import socket
from types import TracebackType

import httpx
from starlette.types import ASGIApp

from cybergine.tls import client_context
from cybergine.web.threaded import ThreadedServer

# The platform's one client TLS context (see cybergine/tls.py): the tests' clients speak
# plain HTTP to local servers, and would otherwise each load the certificate store.
TLS = client_context()


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
