"""Which endpoint and key an assistant's completions go to, and the provider held to the
outbound policy (the local OpenAI simulator over real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cybergine.egress import OutboundPolicy
from cybergine.errors import InvalidInput
from cybergine.llm.endpoints import ChatEndpoints
from cybergine.llm.openai_chat import OpenAICompatibleChat
from cybergine.llm.providers import ChatMessage, LLMError
from cybergine.settings import load_settings
from tests.support.openai_simulator import OpenAISimulator

PLATFORM = "https://api.openai.com/v1"
OPERATOR_KEY = "sk-operator"
HELLO = [ChatMessage(role="user", content="Hello")]


@pytest.fixture
def endpoints() -> ChatEndpoints:
    return ChatEndpoints.of(
        load_settings(openai_base_url=PLATFORM + "/", openai_api_key=OPERATOR_KEY)
    )


@pytest.fixture
def llm() -> Iterator[OpenAISimulator]:
    with OpenAISimulator() as simulator:
        yield simulator


def test_the_platform_key_goes_only_to_the_platform_url(endpoints: ChatEndpoints) -> None:
    for url in (None, PLATFORM, PLATFORM + "/"):
        chosen = endpoints.choose(url, None)
        assert (chosen.base_url, chosen.api_key, chosen.policy) == (PLATFORM, OPERATOR_KEY, None)
    assert endpoints.choose(None, "sk-own").api_key == "sk-own"
    tenant = endpoints.choose("https://models.example/v1", "sk-own")
    assert (tenant.base_url, tenant.api_key) == ("https://models.example/v1", "sk-own")
    assert tenant.policy is endpoints.policy
    # Not the same URL, though the same host: the operator named one endpoint.
    for url in (
        "https://models.example/v1",
        "https://api.openai.com/v2",
        "HTTPS://API.OPENAI.COM/v1",
    ):
        with pytest.raises(LLMError, match="needs its own API key") as refused:
            endpoints.choose(url, None)
        assert refused.value.retryable is False
        with pytest.raises(InvalidInput) as invalid:
            endpoints.check_key(url, "")
        assert invalid.value.extra == {"field": "llm_api_key"}


async def test_a_refusal_of_the_policy_is_not_retried(llm: OpenAISimulator) -> None:
    provider = OpenAICompatibleChat(
        base_url=llm.base_url, api_key=llm.api_key, model="m", policy=OutboundPolicy(), backoff=0
    )
    async with provider:
        with pytest.raises(LLMError, match="refused by the outbound policy") as refused:
            await provider.complete(HELLO)
    assert refused.value.retryable is False
    assert refused.value.attempts == 1
    assert llm.received() == []


async def test_an_allowed_destination_is_reached_through_the_policy(llm: OpenAISimulator) -> None:
    port = llm.url.rsplit(":", 1)[1]
    provider = OpenAICompatibleChat(
        base_url=llm.base_url,
        api_key=llm.api_key,
        model="m",
        policy=OutboundPolicy(f"127.0.0.1:{port}"),
    )
    async with provider:
        completion = await provider.complete(HELLO)
    assert completion.content
    assert len(llm.received("/v1/chat/completions")) == 1


def test_a_policy_and_a_transport_do_not_go_together(llm: OpenAISimulator) -> None:
    with pytest.raises(ValueError, match="policy"):
        OpenAICompatibleChat(
            base_url=llm.base_url,
            api_key=None,
            model="m",
            policy=OutboundPolicy(),
            transport=httpx.AsyncHTTPTransport(),
        )
