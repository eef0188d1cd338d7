"""Restriction of processing (policy §14): once the team carries out a customer's
restriction request, what the customer writes is stored but goes to no model and no
embeddings endpoint, and nothing answers it; lifted, both resume. The assistant's model
and the platform's embeddings are the local OpenAI-compatible simulator over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import SecretStr

from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.openai_simulator import OpenAISimulator, Reply
from tests.support.server import LiveServer
from tests.support.whatsapp import Shop, open_shop

ADA = "15550001111"


@pytest.fixture
def llm() -> Iterator[OpenAISimulator]:
    with OpenAISimulator() as simulator:
        yield simulator


@pytest.fixture
def settings(settings: Settings, llm: OpenAISimulator) -> Settings:
    return settings.model_copy(
        update={
            "outbound_allowed_hosts": "127.0.0.1",
            "embeddings": "openai",
            "openai_base_url": llm.base_url,
            "openai_api_key": SecretStr(llm.api_key or ""),
        }
    )


@pytest.fixture
async def llm_shop(
    live_server: LiveServer,
    database: Database,
    settings: Settings,
    graph: GraphSimulator,
    llm: OpenAISimulator,
) -> AsyncIterator[Shop]:
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
        },
    )
    await shop.work()
    yield shop
    shop.close()


async def test_a_restricted_customers_words_reach_no_model_until_it_is_lifted(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    llm.reply_next(Reply(content="Returns are free within 30 days [1]."))
    llm_shop.says("What is your return policy?", wa_id=ADA)
    await llm_shop.work()
    assert len(llm_shop.sent_to(ADA)) == 1
    [customer] = llm_shop.api.get("/api/v1/customers").json()

    created = llm_shop.api.post(
        "/api/v1/privacy/requests",
        json={"kind": "restriction", "customer_id": customer["id"], "channel": "email"},
    )
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    verified = llm_shop.api.patch(
        f"/api/v1/privacy/requests/{request_id}",
        json={"verification": "verified", "verification_method": "known_details"},
    )
    assert verified.status_code == 200, verified.text
    done = llm_shop.api.post(f"/api/v1/privacy/requests/{request_id}/carry-out", json={})
    assert done.status_code == 200, done.text

    llm.reset()
    llm_shop.says("How long does shipping take to Berlin?", wa_id=ADA)
    await llm_shop.work()
    assert llm.received() == []  # neither the model nor the embeddings endpoint
    assert len(llm_shop.sent_to(ADA)) == 1
    [conversation] = llm_shop.conversations()
    texts = [m["text"] for m in llm_shop.messages(conversation["id"])]
    assert texts[-1] == "How long does shipping take to Berlin?"

    lifted = llm_shop.api.delete(f"/api/v1/privacy/restrictions/{customer['id']}")
    assert lifted.status_code == 204, lifted.text
    llm.reply_next(Reply(content="Shipping takes 3 days [1]."))
    llm_shop.says("How long does shipping take?", wa_id=ADA)
    await llm_shop.work()
    assert llm.received("/v1/embeddings")
    assert llm.received("/v1/chat/completions")
    assert len(llm_shop.sent_to(ADA)) == 2
