"""An answer's knowledge search embeds the customer's question with the retrieval
model; when that model is an OpenAI-compatible endpoint, the call's tokens count in
the analytics' model usage under the assistant that answered, beside its chat tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from cybergine.analytics.prices import ModelPrice
from cybergine.settings import Settings
from tests.support.openai_simulator import OpenAISimulator
from tests.support.openai_simulator import _approximate_tokens as tokens
from tests.support.whatsapp import Shop

MODEL = "text-embedding-3-small"
QUESTION = "What is your return policy?"


@pytest.fixture
def settings(settings: Settings, llm: OpenAISimulator) -> Settings:
    return settings.model_copy(
        update={
            "outbound_allowed_hosts": "127.0.0.1",
            "embeddings": "openai",
            "embeddings_model": MODEL,
            "openai_base_url": llm.base_url,
            "openai_api_key": SecretStr(llm.api_key or ""),
            "model_prices": {
                f"openai/{MODEL}": ModelPrice(prompt=Decimal("0.02"), completion=Decimal(0))
            },
        }
    )


def _summary(shop: Shop, **extra: Any) -> dict[str, Any]:
    today = datetime.now(UTC).date().isoformat()
    response = shop.api.get(
        "/api/v1/analytics/summary", params={"from": today, "to": today, **extra}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_questions_embedding_counts_under_the_assistant(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    before = len(llm.received("/v1/embeddings"))  # the shop's FAQ, indexed when it opened
    llm_shop.says(QUESTION)
    await llm_shop.work()
    queries = [r.body["input"] for r in llm.received("/v1/embeddings")[before:]]
    assert queries, "the answer searched the knowledge base with the endpoint"
    used = sum(tokens(text) for batch in queries for text in batch)

    body = _summary(llm_shop)
    [row] = [
        r for r in body["model_usage"] if r["kind"] == "embeddings" and r["purpose"] == "retrieval"
    ]
    assert row["assistant_id"] == llm_shop.assistant_id
    assert (row["model"], row["prompt_tokens"], row["requests"]) == (MODEL, used, len(queries))
    assert row["cost"] == pytest.approx(used * 0.02 / 1_000_000)
    mine = {r["assistant_id"]: r for r in body["model_cost"]["by_assistant"]}
    chat = [r for r in body["model_usage"] if r["kind"] == "chat"]
    assert mine[llm_shop.assistant_id]["prompt_tokens"] == used + sum(
        r["prompt_tokens"] for r in chat if r["assistant_id"] == llm_shop.assistant_id
    )

    # Narrowed to the assistant, its own usage stays; the indexing (no assistant) goes.
    narrowed = _summary(llm_shop, assistant_id=llm_shop.assistant_id)
    purposes = {r["purpose"] for r in narrowed["model_usage"] if r["kind"] == "embeddings"}
    assert purposes == {"retrieval"}
    everything = {r["purpose"] for r in body["model_usage"] if r["kind"] == "embeddings"}
    assert everything == {"retrieval", "knowledge"}
