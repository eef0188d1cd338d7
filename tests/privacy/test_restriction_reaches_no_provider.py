"""Restriction of processing (policy §14): once the team carries out a customer's
restriction request, what the customer writes is stored but goes to no model and no
embeddings endpoint, and nothing answers it but the acknowledgement of a right they
exercise (asking for their data, its erasure, a person's review); lifted, both resume.
The assistant's model and the platform's embeddings are the local OpenAI-compatible
simulator over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pydantic import SecretStr

from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.factories import make_organisation_with_key
from tests.support.jobs import run_jobs
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


def _restrict(api: httpx.Client, customer_id: str) -> None:
    created = api.post(
        "/api/v1/privacy/requests",
        json={"kind": "restriction", "customer_id": customer_id, "channel": "email"},
    )
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    verified = api.patch(
        f"/api/v1/privacy/requests/{request_id}",
        json={"verification": "verified", "verification_method": "known_details"},
    )
    assert verified.status_code == 200, verified.text
    done = api.post(f"/api/v1/privacy/requests/{request_id}/carry-out", json={})
    assert done.status_code == 200, done.text


def _open_requests(api: httpx.Client) -> list[tuple[str, str]]:
    items = api.get("/api/v1/privacy/requests", params={"status": "open"}).json()["items"]
    return sorted((item["kind"], item["channel"]) for item in items)


async def test_a_restricted_customer_who_exercises_a_right_is_acknowledged_by_no_model(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    """Restriction stops the assistant, not the handling of the customer's rights (§14):
    asking for their data, its erasure or a person's review still gets the promised
    acknowledgement and a request for the team, and still reaches no model."""
    llm.reply_next(Reply(content="Returns are free within 30 days [1]."))
    llm_shop.says("What is your return policy?", wa_id=ADA)
    await llm_shop.work()
    [customer] = llm_shop.api.get("/api/v1/customers").json()
    _restrict(llm_shop.api, customer["id"])
    assert _open_requests(llm_shop.api) == []
    llm.reset()

    llm_shop.says("What do you know about me?", wa_id=ADA)
    await llm_shop.work()
    [_, access] = llm_shop.sent_to(ADA)
    assert "a copy of the data we hold about you" in access
    assert "30 days" in access
    llm_shop.says("Please delete my data", wa_id=ADA)
    await llm_shop.work()
    assert "delete your data" in llm_shop.sent_to(ADA)[-1]
    assert _open_requests(llm_shop.api) == [("access", "whatsapp"), ("erasure", "whatsapp")]

    # Anything else still waits for the team, unanswered.
    llm_shop.says("How long does shipping take to Berlin?", wa_id=ADA)
    await llm_shop.work()
    assert len(llm_shop.sent_to(ADA)) == 3
    # A person's review of an automated decision (§7) is a right too: people take over.
    llm_shop.says("I want a human to review this decision", wa_id=ADA)
    await llm_shop.work()
    assert len(llm_shop.sent_to(ADA)) == 4
    assert ("human_review", "whatsapp") in _open_requests(llm_shop.api)
    [conversation] = llm_shop.conversations()
    assert conversation["state"] == "waiting_for_human"
    assert llm.received() == []  # neither the model nor the embeddings endpoint


async def test_a_restricted_web_visitor_who_asks_for_their_data_is_acknowledged(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    _, key = await make_organisation_with_key(database)
    site = "https://shop.example"
    with (
        live_server.client(headers={"authorization": f"Bearer {key}"}) as api,
        live_server.client(headers={"Origin": site}) as widget,
    ):
        created = api.post("/api/v1/assistants", json={"name": "Mia", "allowed_origins": [site]})
        assert created.status_code == 201, created.text
        started = widget.post(
            "/widget/v1/session",
            json={"widget_key": created.json()["widget_key"], "visitor_token": None},
        )
        assert started.status_code == 200, started.text
        visitor = {"Authorization": f"Bearer {started.json()['visitor_token']}"}

        def says(text: str, client_id: str) -> None:
            said = widget.post(
                "/widget/v1/messages",
                json={"text": text, "client_id": client_id},
                headers=visitor,
            )
            assert said.status_code in (200, 201, 202), said.text

        def texts(conversation_id: str) -> list[str]:
            path = f"/api/v1/conversations/{conversation_id}/messages"
            return [m["text"] for m in api.get(path).json()["items"]]

        says("Hello", "client-0001")
        await run_jobs(database, settings)
        [conversation] = api.get("/api/v1/conversations").json()["items"]
        _restrict(api, conversation["customer"]["id"])

        says("Do you sell gift cards?", "client-0002")
        await run_jobs(database, settings)
        assert texts(conversation["id"])[-1] == "Do you sell gift cards?"  # unanswered
        says("What personal data do you hold about me?", "client-0003")
        await run_jobs(database, settings)
        answer = texts(conversation["id"])[-1]
        assert "a copy of the data we hold about you" in answer
        assert "30 days" in answer
        assert _open_requests(api) == [("access", "webchat")]
