"""Less data to providers (privacy policy §7, §8, §13): a customer's personal data is
redacted from everything an external model or embeddings endpoint receives (the prompt,
the retrieval query, the model's own tool calls sent back to it), and no completion asks
the provider to store it. Both endpoints are the local OpenAI-compatible simulator over
real HTTP, as the platform's embeddings and the assistant's model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.openai_simulator import OpenAISimulator, Reply, ScriptedToolCall
from tests.support.server import LiveServer
from tests.support.whatsapp import Shop, open_shop

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
EMAIL = "ada.lovelace@example.com"
PHONE = "+44 20 7946 0958"
QUESTION = f"What is your return policy? Write to {EMAIL} or call {PHONE}"


@pytest.fixture
def llm() -> Iterator[OpenAISimulator]:
    with OpenAISimulator() as simulator:
        yield simulator


@pytest.fixture
def settings(settings: Settings, llm: OpenAISimulator) -> Settings:
    # The platform's embeddings come from the OpenAI-compatible endpoint; the model
    # server runs on this machine, which the operator allows.
    return settings.model_copy(
        update={
            "outbound_allowed_hosts": "127.0.0.1",
            "embeddings": "openai",
            "openai_base_url": llm.base_url,
            "openai_api_key": SecretStr(llm.api_key or ""),
        }
    )


async def _shop(
    live_server: LiveServer,
    database: Database,
    settings: Settings,
    graph: GraphSimulator,
    llm: OpenAISimulator,
    **assistant: Any,
) -> Shop:
    shop = await open_shop(
        live_server,
        database,
        settings,
        graph,
        assistant={
            "llm_provider": "openai",
            "llm_base_url": llm.base_url,
            "llm_api_key": llm.api_key,
            "llm_model": "gpt-test",
            **assistant,
        },
    )
    await shop.work()  # the knowledge base indexed (its passages embedded) first
    llm.reset()
    return shop


@pytest.fixture
async def llm_shop(
    live_server: LiveServer,
    database: Database,
    settings: Settings,
    graph: GraphSimulator,
    llm: OpenAISimulator,
) -> AsyncIterator[Shop]:
    shop = await _shop(live_server, database, settings, graph, llm)
    yield shop
    shop.close()


def _sent(llm: OpenAISimulator, path: str) -> list[str]:
    return [json.dumps(r.body, ensure_ascii=False) for r in llm.received(path)]


def _assert_redacted(texts: list[str], *secrets: str) -> None:
    assert texts
    for text in texts:
        for secret in secrets:
            assert secret not in text


async def test_the_retrieval_query_is_redacted_before_it_is_embedded(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    llm.reply_next(Reply(content="Returns are free within 30 days [1]."))
    llm_shop.says(QUESTION)
    await llm_shop.work()

    queries = _sent(llm, EMBEDDINGS)
    _assert_redacted(queries, EMAIL, "7946 0958")
    assert any("return policy" in q and "[email 1]" in q and "[phone 1]" in q for q in queries)
    _assert_redacted(_sent(llm, CHAT), EMAIL, "7946 0958")
    # The lexical half of the search, on our database, still read the question: the
    # answer is grounded in the returns passage.
    [conversation] = llm_shop.conversations()
    reply = llm_shop.messages(conversation["id"])[1]
    assert reply["grounded"] is True


async def test_the_model_s_tool_calls_are_redacted_on_every_way_out(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    """A model's search (a tool call) is embedded redacted, and its arguments go back
    to the model redacted in the next round's history."""
    llm.reply_next(
        Reply(
            tool_calls=(
                ScriptedToolCall("search_knowledge", {"query": f"refund to {EMAIL} {PHONE}"}),
            )
        ),
        Reply(content="Refunds take 30 days [1]."),
    )
    llm_shop.says("What is your return policy?")
    await llm_shop.work()

    first, second = (r.body for r in llm.received(CHAT))
    assert first["tools"]
    echoed = second["messages"][-2]
    assert echoed["role"] == "assistant"
    [call] = echoed["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == {"query": "refund to [email 1] [phone 1]"}
    _assert_redacted(_sent(llm, CHAT), EMAIL, "7946 0958")
    tool_queries = [q for q in _sent(llm, EMBEDDINGS) if "refund to" in q]
    assert tool_queries
    _assert_redacted(_sent(llm, EMBEDDINGS), EMAIL, "7946 0958")


async def test_no_completion_asks_the_provider_to_store_it(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    llm.reply_next(
        Reply(tool_calls=(ScriptedToolCall("search_knowledge", {"query": "returns"}),)),
        Reply(content="Returns are free [1]."),
    )
    llm_shop.says("What is your return policy?")
    await llm_shop.work()
    bodies = [r.body for r in llm.received(CHAT)]
    assert len(bodies) == 2
    assert [body["store"] for body in bodies] == [False, False]


async def test_an_assistant_that_does_not_redact_sends_the_query_as_written(
    live_server: LiveServer,
    database: Database,
    settings: Settings,
    graph: GraphSimulator,
    llm: OpenAISimulator,
) -> None:
    """Redaction follows the assistant's setting, for the query as for the prompt."""
    shop = await _shop(live_server, database, settings, graph, llm, redact_personal_data=False)
    try:
        shop.says(QUESTION)
        await shop.work()
    finally:
        shop.close()
    assert any(EMAIL in q for q in _sent(llm, EMBEDDINGS))
