"""``/metrics`` of a worker host that has no web process: ``cybergine worker`` serves its
host's metrics directory on ``CYBERGINE_WORKER_METRICS_PORT`` (all interfaces; the same
rule as the web's: loopback clients, or the bearer token; 404 to anyone else without
one), from a thread of its own, so neither a scrape nor a signal touches the worker's
event loop. The job queue's figures come from the web processes' ``/metrics``.
"""

from __future__ import annotations

import socket
import threading

import uvicorn
from fastapi import FastAPI

from cybergine.observability import api
from cybergine.settings import Settings
from cybergine.web.proxies import (
    ForwardedHeadersMiddleware,
    TrustedProxies,
    parse_trusted_proxies,
)


def metrics_app(settings: Settings) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.database = None  # no queue figures here: the web processes report them
    app.include_router(api.router)
    trusted = TrustedProxies(parse_trusted_proxies(settings.trusted_proxies))
    app.add_middleware(ForwardedHeadersMiddleware, trusted=trusted)
    return app


class WorkerMetricsServer:
    def __init__(self, settings: Settings, port: int, host: str = "0.0.0.0") -> None:  # noqa: S104
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            metrics_app(settings),
            log_config=None,
            access_log=False,
            lifespan="off",
            proxy_headers=False,  # the app judges forwarded headers (web.proxies)
            server_header=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        # Off the main thread, uvicorn leaves the process' signal handlers alone.
        self._thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self._socket]},
            name="worker-metrics",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
