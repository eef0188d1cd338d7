"""OpenTelemetry traces in one process, exported over real OTLP/HTTP to a receiver of the
test's own: a web chat message's request, its reply job and the answer's delivery in one
trace; a model call's span with its tokens, and its failure recorded; off unless asked,
and a job that carries a trace context runs on a worker with traces off."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from cybergine.app import create_app
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from cybergine.job_names import JobName
from cybergine.llm.openai_chat import OpenAICompatibleChat
from cybergine.llm.providers import ChatMessage, LLMError
from cybergine.observability import tracing
from cybergine.ops.check import configuration_problems
from cybergine.queue import defer
from cybergine.settings import Settings
from tests.observability.otlp import Receiver, ancestors
from tests.support.factories import make_organisation_with_key
from tests.support.jobs import run_jobs
from tests.support.openai_simulator import Fault, OpenAISimulator
from tests.support.server import LiveServer

SHOP = "https://shop.example"
SERVER, CONSUMER, CLIENT = 2, 5, 3  # opentelemetry.proto's SpanKind
ERROR = 2  # its status code


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """Traces on in this process, exported to a receiver; off again afterwards."""
    with Receiver() as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", running.endpoint)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "cybergine-test")
        assert tracing.configure("web")
        try:
            yield running
        finally:
            tracing.shutdown()


def test_traces_are_off_unless_an_endpoint_is_named() -> None:
    endpoint = "http://collector:4318"
    assert not tracing.wanted({})
    assert not tracing.wanted({"OTEL_SERVICE_NAME": "cybergine"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint + "/v1/traces"})
    assert not tracing.wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SDK_DISABLED": "true"}
    )
    assert not tracing.wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_EXPORTER": "none"}
    )
    # Off in this process: nothing is carried, no span is made.
    assert not tracing.enabled()
    assert tracing.job_arguments() == {}
    with tracing.span("nothing") as span:
        assert span is None


def test_check_names_what_the_exporter_cannot_do(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    def listed() -> list[str]:
        return [str(p) for p in configuration_problems(settings) if p.what.startswith("OTEL_")]

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert listed() == []  # traces are not asked for: nothing to say
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")
    [protocol, endpoint] = listed()
    assert protocol.startswith("OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not supported")
    assert endpoint.startswith("OTEL_EXPORTER_OTLP_ENDPOINT: must be the OTLP/HTTP receiver's")
    # The traces' own variables come first, as the exporter reads them.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert listed() == []


async def test_a_web_chat_message_and_its_answer_are_one_trace(
    receiver: Receiver, database: Database, settings: Settings
) -> None:
    with LiveServer(create_app(settings, run_worker=False)) as server:
        _, key = await make_organisation_with_key(database)
        with server.client(headers={"authorization": f"Bearer {key}"}) as api:
            created = api.post(
                "/api/v1/assistants", json={"name": "Mia", "allowed_origins": [SHOP]}
            )
            assert created.status_code == 201, created.text
            qa = {"question": "Do you ship abroad?", "answer": "Yes, to 30 countries."}
            assert api.post("/api/v1/knowledge/qa", json=qa).status_code == 202
        await run_jobs(database, settings)
        with server.client() as http:
            started = http.post(
                "/widget/v1/session",
                json={"widget_key": created.json()["widget_key"]},
                headers={"Origin": SHOP},
            )
            assert started.status_code == 200, started.text
            said = http.post(
                "/widget/v1/messages",
                json={"text": "Do you ship abroad?", "client_id": uuid.uuid4().hex},
                headers={
                    "Origin": SHOP,
                    "Authorization": f"Bearer {started.json()['visitor_token']}",
                },
            )
            assert said.status_code in (200, 201, 202), said.text
        async with database.transaction() as session:
            carried = await session.scalar(
                text("SELECT args FROM procrastinate_jobs WHERE task_name = :task"),
                {"task": JobName.REPLY.value},
            )
        await run_jobs(database, settings)
    tracing.shutdown()  # exports what is left

    [request] = [s for s in receiver.spans if s.name.startswith("POST /widget/v1/messages")]
    assert request.kind == SERVER
    assert request.attributes["http.route"] == "/widget/v1/messages"
    assert request.attributes["http.response.status_code"] == said.status_code
    assert request.resource["service.name"] == "cybergine-test"
    assert request.resource["cybergine.role"] == "web"
    # The reply job was deferred by the SQL function, carrying the request's context.
    assert carried[tracing.TRACE_ARGUMENT].split("-")[1:3] == [request.trace_id, request.span_id]

    [job] = receiver.named(f"job {JobName.REPLY.value}")
    assert job.kind == CONSUMER
    assert (job.trace_id, job.parent_id) == (request.trace_id, request.span_id)
    assert job.attributes["cybergine.task"] == JobName.REPLY.value
    [send] = receiver.named("send webchat")
    assert send.trace_id == request.trace_id
    assert job in ancestors(send, receiver.spans)
    # The knowledge base's indexing job was deferred by its own request.
    [index] = receiver.named(f"job {JobName.INDEX_KNOWLEDGE_ITEM.value}")
    [qa_request] = [s for s in receiver.spans if s.span_id == index.parent_id]
    assert qa_request.name == "POST /api/v1/knowledge/qa"


async def test_a_model_call_is_a_client_span_with_its_tokens_and_failures(
    receiver: Receiver,
) -> None:
    with OpenAISimulator() as llm:
        provider = OpenAICompatibleChat(
            base_url=llm.base_url, api_key=llm.api_key, model="gpt-test", max_attempts=1
        )
        try:
            answered = await provider.complete([ChatMessage(role="user", content="Hello there")])
            llm.fail_next(Fault(400))
            with pytest.raises(LLMError):
                await provider.complete([ChatMessage(role="user", content="Hello again")])
        finally:
            await provider.aclose()
    tracing.shutdown()

    ok, failed = receiver.named("chat gpt-test")
    assert ok.kind == CLIENT
    assert ok.attributes["gen_ai.provider.name"] == "openai"
    assert ok.attributes["gen_ai.request.model"] == "gpt-test"
    assert ok.attributes["gen_ai.usage.input_tokens"] == answered.usage.prompt_tokens > 0
    assert ok.attributes["gen_ai.usage.output_tokens"] == answered.usage.completion_tokens > 0
    assert ok.status != ERROR
    assert failed.status == ERROR
    assert failed.attributes["error.type"] == "LLMError"
    assert failed.attributes["http.response.status_code"] == 400
    # The error's message (it may quote the conversation) stays out of the trace.
    assert (failed.events, failed.status_message) == ((), "")


async def test_a_worker_with_traces_off_runs_a_job_that_carries_a_context(
    database: Database, settings: Settings
) -> None:
    """A web process with traces on and a worker with them off: the job runs all the same
    (its task never sees the context)."""
    assert not tracing.enabled()
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    async with database.transaction() as session:
        job_id = await defer(
            session,
            JobName.REPLY,
            message_id=str(uuid7()),
            **{tracing.TRACE_ARGUMENT: traceparent},
        )
    await run_jobs(database, settings)
    async with database.transaction() as session:
        status = await session.scalar(
            text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
        )
    assert status == "succeeded"
