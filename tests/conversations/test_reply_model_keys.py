"""Whose key a reply's model request carries, and where it may go, through the real reply
pipeline: the platform's key only to the platform's endpoint; a tenant's URL only with the
tenant's key and only where the outbound policy allows, even for rows saved before those
rules were checked on save. Two OpenAI simulators over real HTTP: the platform's endpoint
(``CYBERGINE_OPENAI_BASE_URL``) and a model server a tenant runs, which the operator allows."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.openai_simulator import OpenAISimulator, Reply
from tests.support.server import LiveServer
from tests.support.whatsapp import RETURNS_QA, Shop, open_shop

OPERATOR_KEY = "sk-operator-platform-key-0123456789"
TENANT_KEY = "sk-tenant-own-key-0123456789"
CHAT = "/v1/chat/completions"


@pytest.fixture
def platform() -> Iterator[OpenAISimulator]:
    """The platform's own model endpoint, with the operator's key."""
    with OpenAISimulator(api_key=OPERATOR_KEY) as simulator:
        yield simulator


@pytest.fixture
def tenant_llm() -> Iterator[OpenAISimulator]:
    """A model server of a tenant's, on this machine's loopback."""
    with OpenAISimulator(api_key=TENANT_KEY) as simulator:
        yield simulator


@pytest.fixture
def settings(
    settings: Settings, platform: OpenAISimulator, tenant_llm: OpenAISimulator
) -> Settings:
    port = tenant_llm.url.rsplit(":", 1)[1]
    return settings.model_copy(
        update={
            "openai_base_url": platform.base_url,
            "openai_api_key": SecretStr(OPERATOR_KEY),
            # The operator allows the tenant's server, and nothing else on this machine.
            "outbound_allowed_hosts": f"127.0.0.1:{port}",
        }
    )


async def _shop(
    live_server: LiveServer,
    database: Database,
    settings: Settings,
    graph: GraphSimulator,
    assistant: dict[str, Any],
) -> Shop:
    return await open_shop(
        live_server,
        database,
        settings,
        graph,
        assistant={"llm_provider": "openai", "llm_model": "gpt-test", **assistant},
    )


@pytest.fixture
async def tenant_shop(
    live_server: LiveServer,
    database: Database,
    settings: Settings,
    graph: GraphSimulator,
    tenant_llm: OpenAISimulator,
) -> AsyncIterator[Shop]:
    """A shop whose assistant uses the tenant's model server with the tenant's key."""
    shop = await _shop(
        live_server,
        database,
        settings,
        graph,
        {"llm_base_url": tenant_llm.base_url, "llm_api_key": TENANT_KEY},
    )
    yield shop
    shop.close()


def _keys_seen(simulator: OpenAISimulator) -> list[str]:
    return [r.headers.get("authorization", "") for r in simulator.received()]


def _llm_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        str(record.msg.get("error"))
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == "reply.llm_failed"
    ]


async def test_a_tenant_url_gets_the_tenant_key_and_never_the_operator_s(
    tenant_shop: Shop, tenant_llm: OpenAISimulator, platform: OpenAISimulator
) -> None:
    tenant_llm.reply_next(Reply(content="Returns are free within 30 days [1]."))
    tenant_shop.says("What is your return policy?")
    await tenant_shop.work()
    assert _keys_seen(tenant_llm) == [f"Bearer {TENANT_KEY}"]
    assert platform.received() == []
    assert "Returns are free within 30 days" in tenant_shop.sent_to()[0]


async def test_an_old_row_with_a_tenant_url_and_no_key_never_sends_the_operator_key(
    tenant_shop: Shop,
    tenant_llm: OpenAISimulator,
    platform: OpenAISimulator,
    database: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Saved before a tenant URL needed a tenant key (the API now refuses this).
    async with database.transaction() as session:
        await session.execute(text("UPDATE assistants SET llm_api_key = NULL"))
    tenant_shop.says("What is your return policy?")
    with caplog.at_level(logging.WARNING):
        await tenant_shop.work()
    for seen in _keys_seen(tenant_llm) + _keys_seen(platform):
        assert OPERATOR_KEY not in seen
    assert tenant_llm.received() == []
    # The customer still gets the offline answer; the team's log says why.
    assert RETURNS_QA["answer"] in tenant_shop.sent_to()[0]
    [failure] = _llm_failures(caplog)
    assert "needs its own API key" in failure


async def test_an_old_row_aimed_at_an_address_the_operator_did_not_allow_is_refused_when_sent(
    tenant_shop: Shop, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # A service on the server's loopback the operator did not list: saved before the
    # outbound policy, the row is refused at send time, and nothing reaches the service.
    with OpenAISimulator(api_key=TENANT_KEY) as internal:
        async with database.transaction() as session:
            await session.execute(
                text("UPDATE assistants SET llm_base_url = :url"), {"url": internal.base_url}
            )
        tenant_shop.says("What is your return policy?")
        with caplog.at_level(logging.WARNING):
            await tenant_shop.work()
        assert internal.received() == []
    assert RETURNS_QA["answer"] in tenant_shop.sent_to()[0]
    [failure] = _llm_failures(caplog)
    assert "refused by the outbound policy" in failure
    assert "127.0.0.1 is a loopback address" in failure


async def test_the_platform_endpoint_gets_the_operator_key(
    live_server: LiveServer,
    database: Database,
    settings: Settings,
    graph: GraphSimulator,
    platform: OpenAISimulator,
) -> None:
    # No URL of its own, or exactly the platform's: the operator's key, as before.
    for assistant in ({}, {"llm_base_url": platform.base_url}):
        shop = await _shop(live_server, database, settings, graph, assistant)
        platform.reply_next(Reply(content="Returns are free within 30 days [1]."))
        shop.says("What is your return policy?")
        await shop.work()
        shop.close()
    assert _keys_seen(platform) == [f"Bearer {OPERATOR_KEY}"] * 2
