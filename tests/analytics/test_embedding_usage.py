"""Embedding calls are counted and priced like the answers' model calls: a document
indexed and a search made through an OpenAI-compatible endpoint (the simulator, over
real HTTP) show in the summary's model usage and model cost with the tokens the
endpoint reported, at the price of ``openai/<model>``. The local model is not counted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from cybergine.analytics import embedding_usage
from cybergine.analytics.periods import Filters, period
from cybergine.analytics.prices import ModelPrice
from cybergine.catalog.search import search_products
from cybergine.db.engine import Database
from cybergine.knowledge.embeddings import OpenAICompatibleEmbeddings
from cybergine.knowledge.embeddings.base import metering
from cybergine.settings import Settings
from tests.support.catalog import shoe_shop
from tests.support.factories import make_organisation_with_key
from tests.support.jobs import run_jobs
from tests.support.knowledge import search
from tests.support.openai_simulator import OpenAISimulator
from tests.support.openai_simulator import _approximate_tokens as tokens
from tests.support.server import LiveServer

MODEL = "text-embedding-3-small"
PRICE = ModelPrice(prompt=Decimal("0.02"), completion=Decimal(0))  # per million tokens
SHIPPING = (
    "We ship to the EU, the UK and Switzerland. Standard delivery takes 3 to 5 working days "
    "and is free above 50 euros; express delivery arrives the next working day."
)
EMBEDDINGS = "/v1/embeddings"


@pytest.fixture
def simulator() -> Iterator[OpenAISimulator]:
    with OpenAISimulator() as serving:
        yield serving


@pytest.fixture
def settings(
    settings: Settings, simulator: OpenAISimulator, request: pytest.FixtureRequest
) -> Settings:
    prices = getattr(request, "param", {f"openai/{MODEL}": PRICE})
    return settings.model_copy(
        update={
            "embeddings": "openai",
            "embeddings_model": MODEL,
            "openai_base_url": simulator.base_url,
            "openai_api_key": SecretStr(simulator.api_key or ""),
            "model_prices": prices,
        }
    )


def _reported(simulator: OpenAISimulator) -> list[int]:
    """The tokens the simulator reported for each embeddings request, in order."""
    return [
        sum(tokens(text) for text in received.body["input"])
        for received in simulator.received(EMBEDDINGS)
    ]


def _summary(api: httpx.Client, **extra: Any) -> dict[str, Any]:
    today = datetime.now(UTC).date().isoformat()
    response = api.get("/api/v1/analytics/summary", params={"from": today, "to": today, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _embedding_rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["purpose"]: row for row in body["model_usage"] if row["kind"] == "embeddings"}


async def _index_and_search(
    live_server: LiveServer, database: Database, settings: Settings
) -> tuple[httpx.Client, uuid.UUID]:
    organisation, key = await make_organisation_with_key(database)
    api = live_server.client(headers={"authorization": f"Bearer {key}"})
    created = api.post("/api/v1/knowledge/documents", json={"title": "Shipping", "text": SHIPPING})
    assert created.status_code == 202, created.text
    await run_jobs(database, settings)
    assert search(api, "express delivery next day")
    return api, organisation.id


async def test_indexing_and_searching_are_counted_and_priced(
    live_server: LiveServer, database: Database, settings: Settings, simulator: OpenAISimulator
) -> None:
    api, _ = await _index_and_search(live_server, database, settings)
    indexed, searched = _reported(simulator)
    assert indexed > 0
    assert searched > 0
    body = _summary(api)
    rows = _embedding_rows(body)
    assert set(rows) == {"knowledge", "retrieval"}
    for purpose, used in (("knowledge", indexed), ("retrieval", searched)):
        row = rows[purpose]
        assert (row["provider"], row["model"]) == (f"openai:{MODEL}", MODEL)
        assert row["assistant_id"] is None  # the API's search is for no assistant
        assert (row["requests"], row["answers"]) == (1, 0)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (used, 0)
        assert row["cost"] == pytest.approx(used * 0.02 / 1_000_000)
    total = body["model_cost"]["total"]
    assert total["prompt_tokens"] == indexed + searched
    assert total["cost"] == pytest.approx((indexed + searched) * 0.02 / 1_000_000)
    assert total["complete"] is True

    # A second search adds its tokens to the same hour's row.
    assert search(api, "returns")
    searched_again = _reported(simulator)[2]
    again = _embedding_rows(_summary(api))["retrieval"]
    assert again["requests"] == 2
    assert again["prompt_tokens"] == searched + searched_again

    # No embedding call belongs to a channel; and no row of another organisation shows.
    assert _embedding_rows(_summary(api, channel="webchat")) == {}
    api.close()
    _, other_key = await make_organisation_with_key(database, name="Other")
    with live_server.client(headers={"authorization": f"Bearer {other_key}"}) as stranger:
        assert _embedding_rows(_summary(stranger)) == {}


@pytest.mark.parametrize("settings", [{}], indirect=True)
async def test_without_a_price_the_cost_is_unknown_not_zero(
    live_server: LiveServer, database: Database, settings: Settings, simulator: OpenAISimulator
) -> None:
    api, _ = await _index_and_search(live_server, database, settings)
    body = _summary(api)
    api.close()
    rows = _embedding_rows(body)
    assert rows["knowledge"]["cost"] is None
    assert rows["knowledge"]["prompt_tokens"] == _reported(simulator)[0]
    assert body["model_cost"]["total"]["cost"] is None
    assert body["model_cost"]["total"]["complete"] is False


async def test_only_the_calls_inside_the_block_count(simulator: OpenAISimulator) -> None:
    provider = OpenAICompatibleEmbeddings(
        base_url=simulator.base_url,
        api_key=simulator.api_key,
        model=MODEL,
        dimensions=384,
        max_batch=2,
    )
    async with provider:
        await provider.embed(["outside any block"], kind="query")
        with metering() as usage:
            await provider.embed(["one text", "two texts here", "three"], kind="document")
    # Two requests (a batch holds two texts), with the tokens the server reported.
    sent = _reported(simulator)[1:]
    assert len(sent) == 2
    assert usage.calls == {(f"openai:{MODEL}", MODEL): [2, 3, sum(sent)]}


async def test_the_local_model_is_not_counted() -> None:
    from cybergine.knowledge.embeddings import LocalMiniLM, local_model_available

    if not local_model_available():
        pytest.skip("the local embedding model is not installed")
    with metering() as usage:
        vectors = await LocalMiniLM().embed(["where is my parcel"], kind="query")
    assert len(vectors) == 1
    assert usage.calls == {}


async def test_the_catalogue_indexed_and_searched_is_counted(
    database: Database, simulator: OpenAISimulator
) -> None:
    provider = OpenAICompatibleEmbeddings(
        base_url=simulator.base_url, api_key=simulator.api_key, model=MODEL, dimensions=384
    )
    async with provider:
        principal, _ = await shoe_shop(database, provider)
        organisation_id = principal.organisation_id
        indexed = sum(_reported(simulator))
        async with database.transaction() as session:
            hits = await search_products(
                session, organisation_id, "waterproof trail shoe", provider=provider
            )
    assert hits
    searched = _reported(simulator)[-1]
    today = datetime.now(UTC).date()
    async with database.transaction() as session:
        rows = await embedding_usage.usage_rows(
            session, organisation_id, Filters(period(today, today, "UTC"))
        )
    assert {row["purpose"]: row["prompt_tokens"] for row in rows} == {
        "products": indexed,
        "product_search": searched,
    }
