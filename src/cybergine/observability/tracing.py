"""OpenTelemetry traces, optional: one trace from a webhook to the answer's send.

Off unless the operator names an OTLP endpoint with OpenTelemetry's own variables
(``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``); the SDK
reads the rest itself (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``).
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` keeps it off. Spans leave by
OTLP over HTTP/protobuf from a background thread (the SDK's batch processor).

Off, nothing of the SDK is imported, no middleware is installed, every helper here is
one test of a module global, and jobs carry nothing more.

The spans (``docs/operations.md`` lists them): each HTTP request (:class:`TracingMiddleware`,
named by route template), each job a worker runs (:func:`traced_job`), each language
model call (:func:`traced_model_call`), each Graph API call, and the send of an answer.
A job's parent is the span that deferred it: the deferring code adds the W3C
``traceparent`` to the job's arguments (:func:`job_arguments`: ``queue.defer``, the
reply job of ``cybergine_record_inbound``, the delivery job of ``conversations.outbound``)
and :func:`traced_job` takes it out again before the task sees its arguments.

Every log line written while a span is current carries its ``trace_id`` and ``span_id``
(:func:`add_trace_ids`, a processor of ``cybergine.logging``).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from procrastinate import JobContext
from procrastinate.middleware import AsyncCallNext
from procrastinate.worker import Worker
from starlette.types import ASGIApp, Receive, Scope, Send

from cybergine.observability.http import UNMATCHED, route_template
from cybergine.response_status import ResponseStatus

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

CLIENT = SpanKind.CLIENT
INTERNAL = SpanKind.INTERNAL

# The job argument a deferred job's trace context travels in (W3C trace context).
TRACE_ARGUMENT = "traceparent"
SERVICE_NAME = "cybergine"

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_PROPAGATOR = TraceContextTextMapPropagator()
_HEADERS = {b"traceparent": "traceparent", b"tracestate": "tracestate"}
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()
_NO_ARGUMENTS: Mapping[str, str] = {}

_P = ParamSpec("_P")


class _State:
    tracer: trace.Tracer | None = None
    provider: TracerProvider | None = None


_state = _State()


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the operator asked for traces: an OTLP endpoint named, the SDK not
    disabled, and no exporter other than OTLP chosen."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() != "otlp":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


def configuration_problems(environ: Mapping[str, str] = os.environ) -> list[tuple[str, str]]:
    """What in the OpenTelemetry variables this platform cannot do, by variable, when
    traces are asked for (``cybergine check``): another protocol than OTLP/HTTP with
    protobuf, an endpoint that is no http(s) URL."""
    if not wanted(environ):
        return []
    found = []
    for name in _PROTOCOL_VARIABLES:
        protocol = environ.get(name, "").strip()
        if protocol:
            if protocol != "http/protobuf":
                found.append(
                    (
                        name,
                        f"{protocol!r} is not supported: traces are exported over OTLP/HTTP "
                        "with protobuf; set http/protobuf or leave it unset",
                    )
                )
            break  # the first one set is the one the exporter uses
    for name in _ENDPOINT_VARIABLES:
        endpoint = environ.get(name, "").strip()
        if endpoint and not endpoint.lower().startswith(("http://", "https://")):
            found.append(
                (name, "must be the OTLP/HTTP receiver's http(s) URL, e.g. http://collector:4318")
            )
    return found


def configure(role: str) -> bool:
    """Call once at the start of ``serve`` or ``worker`` (``role``: web or worker), before
    the app is made; True when traces are on. The SDK reads ``os.environ``."""
    if _state.tracer is not None or not wanted(os.environ):
        return _state.tracer is not None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from cybergine import __version__

    resource = Resource.create({"service.version": __version__, "cybergine.role": role})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        # Neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES named the service.
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    # The sampler, span limits and the exporter's endpoint, headers, timeout and
    # compression are the SDK's to read from the environment.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _state.provider = provider
    _state.tracer = provider.get_tracer("cybergine", __version__)
    return True


def enabled() -> bool:
    return _state.tracer is not None


def shutdown() -> None:
    """Export what is left and stop (the end of ``serve`` and ``worker``)."""
    provider, _state.provider, _state.tracer = _state.provider, None, None
    if provider is not None:
        provider.shutdown()


def span(
    name: str, *, kind: SpanKind = INTERNAL, attributes: Mapping[str, Any] | None = None
) -> contextlib.AbstractContextManager[trace.Span | None]:
    """A span around a block, current inside it (None when traces are off). An exception
    leaving the block sets its status to error (:func:`_started`)."""
    tracer = _state.tracer
    if tracer is None:
        return _NOTHING
    return _started(tracer, name, kind=kind, attributes=attributes)


@contextlib.contextmanager
def _started(
    tracer: trace.Tracer,
    name: str,
    *,
    kind: SpanKind,
    attributes: Mapping[str, Any] | None = None,
    context: Context | None = None,
) -> Iterator[trace.Span]:
    """A current span whose failure is told by the exception's type alone: its message,
    which may quote what a customer wrote, never leaves for the collector (the SDK would
    record it, and its traceback, as an event and in the status)."""
    with tracer.start_as_current_span(
        name,
        context=context,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as error:
            current.set_attribute("error.type", type(error).__qualname__)
            current.set_status(Status(StatusCode.ERROR))
            raise


def job_arguments() -> Mapping[str, str]:
    """What a job deferred now carries besides its own arguments: the current span's
    trace context (nothing when traces are off or no span is current)."""
    if _state.tracer is None:
        return _NO_ARGUMENTS
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    traceparent = carrier.get(TRACE_ARGUMENT)
    return {TRACE_ARGUMENT: traceparent} if traceparent else _NO_ARGUMENTS


async def traced_job(call_next: AsyncCallNext, context: JobContext, worker: Worker) -> Any:
    """A worker middleware, always installed: a job's trace context is taken out of its
    arguments (a worker with traces off runs a job deferred by a process with them on),
    and, with traces on, the job runs in a span that continues the deferrer's trace."""
    carried = context.job.task_kwargs.pop(TRACE_ARGUMENT, None)
    tracer = _state.tracer
    if tracer is None:
        return await call_next()
    parent = _PROPAGATOR.extract({TRACE_ARGUMENT: carried}) if isinstance(carried, str) else None
    job = context.job
    attributes: dict[str, str | int] = {
        "messaging.system": "procrastinate",
        "messaging.operation.type": "process",
        "messaging.destination.name": job.queue,
        "cybergine.task": job.task_name,
        "cybergine.job.id": job.id or 0,
        "cybergine.job.attempts": job.attempts,
    }
    with _started(
        tracer,
        f"job {job.task_name}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    ):
        return await call_next()


class _Usage(Protocol):
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...


class _Completion(Protocol):
    @property
    def usage(self) -> _Usage: ...
    @property
    def model(self) -> str: ...


_C = TypeVar("_C", bound=_Completion)


def traced_model_call(
    provider: str,
) -> Callable[[Callable[_P, Awaitable[_C]]], Callable[_P, Awaitable[_C]]]:
    """Decorates a provider's completion method (its object has ``model``): a client span
    with the provider, the model and the tokens reported (GenAI semantic conventions);
    a failure is recorded on it."""

    def decorate(call: Callable[_P, Awaitable[_C]]) -> Callable[_P, Awaitable[_C]]:
        @functools.wraps(call)
        async def traced(*args: _P.args, **kwargs: _P.kwargs) -> _C:
            tracer = _state.tracer
            if tracer is None:
                return await call(*args, **kwargs)
            model = str(getattr(args[0], "model", "") if args else "")
            attributes = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.system": provider,
                "gen_ai.request.model": model,
            }
            with _started(
                tracer, f"chat {model}".strip(), kind=CLIENT, attributes=attributes
            ) as current:
                try:
                    completion = await call(*args, **kwargs)
                except Exception as error:
                    status = getattr(error, "status", None)
                    if isinstance(status, int):
                        current.set_attribute("http.response.status_code", status)
                    raise
                current.set_attribute("gen_ai.response.model", completion.model)
                current.set_attribute("gen_ai.usage.input_tokens", completion.usage.prompt_tokens)
                current.set_attribute(
                    "gen_ai.usage.output_tokens", completion.usage.completion_tokens
                )
                return completion

        return traced

    return decorate


def add_trace_ids(_logger: Any, _method: str, event_dict: Any) -> Any:
    """A structlog processor: the current span's trace and span ids on the line."""
    if _state.tracer is not None:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event_dict["trace_id"] = format(context.trace_id, "032x")
            event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def _incoming(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        key = _HEADERS.get(name.lower())
        if key is not None:
            found[key] = value.decode("latin-1")
    return found


class TracingMiddleware:
    """A server span per HTTP request, named by its route template once the router has
    matched it (never by the raw path, which may hold tokens); it continues the caller's
    trace when the request brings a ``traceparent``. Installed only when traces are on,
    outside the request log (``web.middleware.RequestContextMiddleware``), so the
    request's own log line carries its trace id. Sockets get none: a span lasting hours
    helps nobody."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = _state.tracer
        if scope["type"] != "http" or tracer is None:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        incoming = _incoming(scope)
        parent = _PROPAGATOR.extract(incoming) if incoming else None
        with _started(
            tracer,
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as current:
            status = ResponseStatus(send)
            try:
                await self.app(scope, receive, status)
            finally:
                route = route_template(scope)
                if route != UNMATCHED:
                    current.update_name(f"{method} {route}")
                    current.set_attribute("http.route", route)
                current.set_attribute("http.response.status_code", status.code)
                if status.code >= 500:
                    current.set_status(Status(StatusCode.ERROR))
