"""Every series the platform exports, and the functions the code records them with.

Label values come from short, fixed lists (channels, task names, route templates,
outcomes), never from an organisation, a customer, a raw path or a model a tenant
chose: a series' count stays bounded however the platform is used.

Every metric has a label, so that no value exists before the process chose where
values live (``process.prepare``: one file per process in a shared directory, or this
process' memory). ``enable(False)`` (``CYBERGINE_METRICS=off``) makes every record a
no-op; the middleware and the worker's hook are then not installed at all.

The job queue's depth and oldest age are not here: ``scrape`` reads them from
PostgreSQL when Prometheus asks.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from cybergine.db.ids import uuid7_time_ms

_P = ParamSpec("_P")


class _Usage(Protocol):
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...


class _Completion(Protocol):
    @property
    def usage(self) -> _Usage: ...


_C = TypeVar("_C", bound=_Completion)
_R = TypeVar("_R")


class _State:
    on = True
    process = "web"  # the role in the pool series: web or worker


_state = _State()


def enable(on: bool) -> None:
    _state.on = on


def enabled() -> bool:
    return _state.on


def set_process(role: str) -> None:
    _state.process = role


def process_role() -> str:
    return _state.process


# --- HTTP and sockets -------------------------------------------------------------------

HTTP_REQUEST_SECONDS = Histogram(
    "cybergine_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OPEN_SOCKETS = Gauge(
    "cybergine_open_sockets",
    "WebSocket connections open now, by route template.",
    ["route"],
    multiprocess_mode="livesum",
)

# --- Webhooks ---------------------------------------------------------------------------

WEBHOOK_DELIVERIES = Counter(
    "cybergine_webhook_deliveries",
    "Webhook deliveries received, by channel and outcome (accepted, signature_failure, refused).",
    ["channel", "outcome"],
)
WEBHOOK_SIGNATURE_FAILURES = Counter(
    "cybergine_webhook_signature_failures",
    "Webhook deliveries refused for their signature, by channel.",
    ["channel"],
)

# --- Jobs and replies -------------------------------------------------------------------

JOB_SECONDS = Histogram(
    "cybergine_job_duration_seconds",
    "Time a job ran, by task and how it ended (succeeded, failed, aborted).",
    ["task", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
JOB_FAILURES = Counter(
    "cybergine_job_failures",
    "Jobs that ended with an error (each attempt), by task.",
    ["task"],
)
REPLY_SECONDS = Histogram(
    "cybergine_reply_latency_seconds",
    "Time from a customer's message reaching the platform to the assistant's answer "
    "being stored and, where the reply job sends it, handed to the channel.",
    ["channel", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300),
)
REPLY_OUTCOMES = frozenset({"answered", "fallback", "greeted", "handed_off", "restricted"})

# --- Language models --------------------------------------------------------------------

MODEL_CALL_SECONDS = Histogram(
    "cybergine_model_call_duration_seconds",
    "Time a call to a language model took (its retries included), by provider and "
    "outcome (ok, error).",
    ["provider", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60),
)
MODEL_TOKENS = Counter(
    "cybergine_model_tokens",
    "Tokens the language model reported, by provider and kind (prompt, completion).",
    ["provider", "kind"],
)
MODEL_CALL_ERRORS = Counter(
    "cybergine_model_call_errors",
    "Calls to a language model that failed, by provider and reason (http_4xx, http_5xx, "
    "network, refused).",
    ["provider", "reason"],
)

# --- Database pools ---------------------------------------------------------------------

DB_POOL_IN_USE = Gauge(
    "cybergine_db_pool_connections_in_use",
    "Database connections checked out of the processes' pools now, by process role.",
    ["process"],
    multiprocess_mode="livesum",
)
DB_POOL_WAIT_SECONDS = Histogram(
    "cybergine_db_pool_wait_seconds",
    "Checkouts that found the pool at its limit, and how long they waited, by process role.",
    ["process"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

ALL = (
    HTTP_REQUEST_SECONDS,
    OPEN_SOCKETS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_SIGNATURE_FAILURES,
    JOB_SECONDS,
    JOB_FAILURES,
    REPLY_SECONDS,
    MODEL_CALL_SECONDS,
    MODEL_TOKENS,
    MODEL_CALL_ERRORS,
    DB_POOL_IN_USE,
    DB_POOL_WAIT_SECONDS,
)


_children: dict[tuple[str, tuple[str, ...]], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once: on the paths every request takes."""
    key = (metric._name, labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def any_recorded() -> bool:
    """Whether any value of ours exists yet (``process.prepare`` must come first)."""
    return any(metric._metrics for metric in ALL)


# --- Recording --------------------------------------------------------------------------


def metered_webhook(
    channel: str,
) -> Callable[[Callable[_P, Awaitable[_R]]], Callable[_P, Awaitable[_R]]]:
    """Decorates a webhook route: each delivery is counted by how it ended (accepted, or
    refused by an error: a signature failure when it is a 401)."""

    def decorate(route: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]:
        @functools.wraps(route)
        async def metered(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            if not _state.on:
                return await route(*args, **kwargs)
            try:
                response = await route(*args, **kwargs)
            except Exception as error:
                if getattr(error, "status", None) == 401:
                    WEBHOOK_DELIVERIES.labels(channel, "signature_failure").inc()
                    WEBHOOK_SIGNATURE_FAILURES.labels(channel).inc()
                else:
                    WEBHOOK_DELIVERIES.labels(channel, "refused").inc()
                raise
            child(WEBHOOK_DELIVERIES, channel, "accepted").inc()
            return response

        return metered

    return decorate


def metered_model_call(
    provider: str,
) -> Callable[[Callable[_P, Awaitable[_C]]], Callable[_P, Awaitable[_C]]]:
    """Decorates a provider's completion call: its time, the tokens it reports, and why
    it failed (an ``LLMError``'s status, or a network failure or refusal)."""

    def decorate(call: Callable[_P, Awaitable[_C]]) -> Callable[_P, Awaitable[_C]]:
        @functools.wraps(call)
        async def metered(*args: _P.args, **kwargs: _P.kwargs) -> _C:
            if not _state.on:
                return await call(*args, **kwargs)
            started = time.perf_counter()
            try:
                completion = await call(*args, **kwargs)
            except Exception as error:
                elapsed = time.perf_counter() - started
                MODEL_CALL_SECONDS.labels(provider, "error").observe(elapsed)
                MODEL_CALL_ERRORS.labels(provider, _model_error_reason(error)).inc()
                raise
            MODEL_CALL_SECONDS.labels(provider, "ok").observe(time.perf_counter() - started)
            usage = completion.usage
            if usage.prompt_tokens:
                MODEL_TOKENS.labels(provider, "prompt").inc(usage.prompt_tokens)
            if usage.completion_tokens:
                MODEL_TOKENS.labels(provider, "completion").inc(usage.completion_tokens)
            return completion

        return metered

    return decorate


def _model_error_reason(error: BaseException) -> str:
    status: Any = getattr(error, "status", None)
    if isinstance(status, int):
        return "http_5xx" if status >= 500 else "http_4xx"
    if getattr(error, "retryable", False):
        return "network"
    return "refused"


def reply_stored(message_id: uuid.UUID, channel: str, outcome: str) -> None:
    """The assistant's answer to ``message_id`` is stored (and sent, where the reply job
    sends it): the time since the message reached us, read from its UUIDv7 id."""
    if not _state.on or outcome not in REPLY_OUTCOMES or message_id.version != 7:
        return
    seconds = max(0.0, time.time() - uuid7_time_ms(message_id) / 1000)
    REPLY_SECONDS.labels(channel, outcome).observe(seconds)
