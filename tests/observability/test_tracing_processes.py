"""Traces across real processes: ``cybergine serve`` and ``cybergine worker`` started with
OpenTelemetry's variables pointing at an OTLP/HTTP receiver of the test's own. A signed
WhatsApp webhook, answered through the OpenAI-compatible and Graph API simulators, is one
trace from the webhook's request to the Graph API send, across both processes, and their
log lines carry its ids; with traces off nothing is exported and nothing is carried."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import text

from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.db.engine import Database
from cybergine.job_names import JobName
from cybergine.observability.tracing import TRACE_ARGUMENT
from cybergine.settings import Settings
from tests.observability.otlp import Receiver, Span, ancestors
from tests.support.openai_simulator import OpenAISimulator
from tests.support.processes import CYBERGINE, clean_env, start_serve, wait_until
from tests.support.server import LiveServer, free_port
from tests.support.whatsapp import APP_SECRET, RETURNS_QA, VERIFY_TOKEN, Shop, open_shop

pytestmark = pytest.mark.slow

CUSTOMER = "15550001111"
SERVER, CONSUMER, CLIENT = 2, 5, 3  # opentelemetry.proto's SpanKind


@dataclass
class _Served:
    """The running ``cybergine serve``, as ``open_shop`` reaches a server."""

    url: str

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)


@dataclass
class Run:
    shop: Shop
    serve_log: Path
    worker_log: Path

    def lines(self, log: Path) -> list[dict[str, Any]]:
        found = []
        for line in log.read_text().splitlines():
            if line.startswith("{"):
                found.append(json.loads(line))
        return found


@pytest.fixture
def llm() -> Iterator[OpenAISimulator]:
    with OpenAISimulator() as simulator:
        yield simulator


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def _answer_one_question(
    tmp_path: Path,
    database: Database,
    database_url: str,
    settings: Settings,
    graph: GraphSimulator,
    llm: OpenAISimulator,
    otel: dict[str, str],
) -> Run:
    """serve and worker with ``otel`` in their environment; a customer asks, the answer
    goes out through the Graph API simulator; both processes are stopped by SIGTERM."""
    assert settings.secret_key is not None
    assert settings.encryption_keys is not None
    env = clean_env(
        CYBERGINE_DATABASE_URL=database_url,
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        CYBERGINE_EMBEDDED_WORKER="false",
        CYBERGINE_METRICS="off",
        CYBERGINE_SECRET_KEY=settings.secret_key.get_secret_value(),
        CYBERGINE_ENCRYPTION_KEYS=settings.encryption_keys.get_secret_value(),
        CYBERGINE_WHATSAPP_GRAPH_URL=graph.base_url,
        CYBERGINE_WHATSAPP_APP_SECRET=APP_SECRET,
        CYBERGINE_WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN,
        CYBERGINE_LOG_LEVEL="INFO",
        CYBERGINE_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",  # the model simulator
        **otel,
    )
    port = free_port()
    serve_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
    server = start_serve(port, env, serve_log)
    worker: subprocess.Popen[bytes] | None = None
    try:
        served = cast(LiveServer, _Served(f"http://127.0.0.1:{port}"))
        # The knowledge base is indexed by this process' own worker run, before the
        # worker process starts.
        shop = asyncio.run(
            open_shop(served, database, settings, graph, assistant=llm.assistant_fields())
        )
        with worker_log.open("ab") as log:
            worker = subprocess.Popen([CYBERGINE, "worker"], env=env, stdout=log, stderr=log)
        shop.says(RETURNS_QA["question"], wa_id=CUSTOMER)
        wait_until(lambda: shop.sent_to(CUSTOMER), 90, "no answer was sent")
        assert llm.received("/v1/chat/completions"), "the answer did not come from the model"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        shop.close()
        return Run(shop, serve_log, worker_log)
    finally:
        for process in (worker, server):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=30)


async def _reply_job_arguments(database: Database) -> dict[str, Any]:
    async with database.transaction() as session:
        arguments: dict[str, Any] = await session.scalar(
            text("SELECT args FROM procrastinate_jobs WHERE task_name = :task"),
            {"task": JobName.REPLY.value},
        )
    return arguments


def _one(spans: list[Span], what: str) -> Span:
    assert len(spans) == 1, f"{what}: {spans}"
    return spans[0]


def test_a_webhook_its_reply_job_the_model_call_and_the_send_are_one_trace(
    tmp_path: Path,
    database: Database,
    database_url: str,
    settings: Settings,
    graph: GraphSimulator,
    llm: OpenAISimulator,
    receiver: Receiver,
) -> None:
    run = _answer_one_question(
        tmp_path,
        database,
        database_url,
        settings,
        graph,
        llm,
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "cybergine-e2e",
            # Nothing is exported on a schedule within the test: what the receiver has,
            # the processes sent as SIGTERM stopped them.
            "OTEL_BSP_SCHEDULE_DELAY": "600000",
        },
    )
    spans = list(receiver.spans)
    reply = _one(receiver.named(f"job {JobName.REPLY.value}"), "the reply job")
    webhook = _one([s for s in spans if s.span_id == reply.parent_id], "the reply's parent")
    assert webhook.name == "POST /webhooks/whatsapp"
    assert webhook.kind == SERVER
    assert webhook.parent_id == ""  # Meta sends no trace context: the trace starts here
    assert webhook.attributes["http.response.status_code"] == 200
    assert webhook.resource["cybergine.role"] == "web"
    assert webhook.resource["service.name"] == "cybergine-e2e"
    assert reply.kind == CONSUMER
    assert reply.trace_id == webhook.trace_id
    assert reply.resource["cybergine.role"] == "worker"
    # The reply job was deferred by the SQL ingest with the webhook's context.
    carried = asyncio.run(_reply_job_arguments(database))[TRACE_ARGUMENT]
    assert carried.split("-")[1:3] == [webhook.trace_id, webhook.span_id]

    trace = [s for s in spans if s.trace_id == webhook.trace_id]
    model = _one([s for s in trace if s.name == "chat gpt-test"], "the model call")
    assert model.kind == CLIENT
    assert reply in ancestors(model, spans)
    assert model.attributes["gen_ai.provider.name"] == "openai"
    assert model.attributes["gen_ai.usage.input_tokens"] > 0
    assert model.attributes["gen_ai.usage.output_tokens"] > 0
    send = _one([s for s in trace if s.name == "graph send"], "the Graph API send")
    assert send.kind == CLIENT
    assert send.attributes["http.response.status_code"] == 200
    chain = [s.name for s in ancestors(send, spans)]
    assert chain[0] == "send whatsapp"
    assert chain[-2:] == [reply.name, webhook.name]  # whichever job sent it, the reply's

    # Every line logged inside a span carries its ids.
    request_lines = [
        line
        for line in run.lines(run.serve_log)
        if line.get("event") == "request" and line.get("trace_id") == webhook.trace_id
    ]
    assert [line["path"] for line in request_lines] == ["/webhooks/whatsapp"]
    assert request_lines[0]["span_id"] == webhook.span_id
    done = [line for line in run.lines(run.worker_log) if line.get("event") == "reply.done"]
    assert [(line["trace_id"], line["span_id"]) for line in done] == [
        (reply.trace_id, reply.span_id)
    ]


def test_with_traces_off_nothing_is_exported_or_carried(
    tmp_path: Path,
    database: Database,
    database_url: str,
    settings: Settings,
    graph: GraphSimulator,
    llm: OpenAISimulator,
    receiver: Receiver,
) -> None:
    run = _answer_one_question(
        tmp_path,
        database,
        database_url,
        settings,
        graph,
        llm,
        # An endpoint is named, and the SDK is turned off: off wins.
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SDK_DISABLED": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    )
    assert receiver.requests == 0
    assert TRACE_ARGUMENT not in asyncio.run(_reply_job_arguments(database))
    lines = run.lines(run.serve_log) + run.lines(run.worker_log)
    assert any(line.get("event") == "reply.done" for line in lines)
    assert not [line for line in lines if "trace_id" in line]
