"""Fixtures of the metrics tests: ``/metrics`` read over real HTTP and parsed, and a shop
whose assistant answers with a model (the local OpenAI-compatible simulator)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.db.engine import Database
from cybergine.observability import metrics
from cybergine.settings import Settings
from tests.support.openai_simulator import OpenAISimulator
from tests.support.server import LiveServer
from tests.support.whatsapp import Shop, open_shop

Sample = tuple[str, frozenset[tuple[str, str]]]


def scrape(http: httpx.Client) -> dict[Sample, float]:
    """Every sample ``/metrics`` answers, by name and labels."""
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(autouse=True)
def metrics_back_on() -> Iterator[None]:
    """A test that builds an app with metrics off leaves them on for the next."""
    yield
    metrics.enable(True)


@pytest.fixture
def llm() -> Iterator[OpenAISimulator]:
    with OpenAISimulator() as simulator:
        yield simulator


@pytest.fixture
async def llm_shop(
    live_server: LiveServer,
    database: Database,
    settings: Settings,
    graph: GraphSimulator,
    llm: OpenAISimulator,
) -> AsyncIterator[Shop]:
    opened = await open_shop(
        live_server,
        database,
        settings,
        graph,
        assistant=llm.assistant_fields(),
    )
    yield opened
    opened.close()
