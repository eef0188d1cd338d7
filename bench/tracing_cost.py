"""What OpenTelemetry traces cost the webhook ingest: ``bench/whatsapp.py --tracing-rounds N``.

As ``metrics_cost``: two ``cybergine serve`` processes side by side share each ingest
run's deliveries, one with traces on (``OTEL_EXPORTER_OTLP_ENDPOINT`` naming a local
OTLP/HTTP sink that answers every export with 200, every request sampled) and one
without; the cost is the web process' CPU time per delivery with traces over without,
the median over the rounds. The on process pays for its request spans, the trace
context carried by each reply job and the batch exporter's thread, which encodes and
sends the spans; the sink's own work is this process'.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from metrics_cost import side_by_side


class Sink:
    """Answers OTLP/HTTP exports with 200 and counts them."""

    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length", "0"))
                self.rfile.read(size)
                sink.exports += 1
                sink.bytes += size
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def run_rounds(
    platform: Any,
    sim: Any,
    args: argparse.Namespace,
    *,
    secret: str,
    run_ingest: Callable[..., Any],
) -> list[Any]:
    """The ingest runs of every round (their rows), after printing the verdict."""
    sink = Sink()
    try:
        measured = side_by_side(
            platform,
            sim,
            args,
            secret=secret,
            run_ingest=run_ingest,
            rounds=args.tracing_rounds,
            on_env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
                "OTEL_TRACES_SAMPLER": "always_on",
            },
            off_env={},
            what="traces",
        )
    finally:
        sink.stop()
    print(
        f"\nTraces' cost on the ingest: {args.tracing_rounds} rounds, two web processes side by"
        f" side (OTEL_EXPORTER_OTLP_ENDPOINT set, every request sampled, and unset) sharing each"
        f" run's deliveries equally; {sink.exports} exports of {sink.bytes / 1e6:.1f} MB received"
    )
    print(measured.summary())
    return measured.rows
