"""The reply pipeline with an OpenAI-compatible model (the local simulator over real HTTP):
numbered sources in the prompt, citations, tool calls, token usage, redaction of personal
data, no other customer's words, and the offline answer when the model fails."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cybergine.settings import Settings
from tests.conversations.conftest import INSTRUCTIONS
from tests.support.openai_simulator import Fault, OpenAISimulator, Reply, ScriptedToolCall
from tests.support.whatsapp import RETURNS_QA, SHIPPING_QA, Shop

CUSTOMER = "15550001111"
CHAT = "/v1/chat/completions"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The model server the assistants use runs on this machine: the operator allows it.
    return settings.model_copy(update={"outbound_allowed_hosts": "127.0.0.1"})


def _chat_requests(llm: OpenAISimulator) -> list[dict[str, Any]]:
    return [r.body for r in llm.received(CHAT)]


def _prompt_text(request: dict[str, Any]) -> str:
    return json.dumps(request["messages"], ensure_ascii=False)


async def test_the_answer_cites_numbered_sources_and_records_usage(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    llm.reply_next(Reply(content="You can return items within 30 days [1]."))
    llm_shop.says("What is your return policy?")
    await llm_shop.work()

    [request] = _chat_requests(llm)
    assert request["model"] == "gpt-test"
    system = request["messages"][0]
    assert system["role"] == "system"
    assert INSTRUCTIONS in system["content"]
    last = request["messages"][-1]["content"]
    assert "What is your return policy?" in last
    assert f"[1] {RETURNS_QA['question']}" in last  # the numbered source
    assert RETURNS_QA["answer"] in last
    assert {t["function"]["name"] for t in request["tools"]} == {
        "search_knowledge",
        "handoff_to_human",
    }

    [sent] = llm_shop.sent_to(CUSTOMER)
    assert "You can return items within 30 days [1]." in sent
    assert "[1] What is your return policy?" in sent  # the sources footer
    [conversation] = llm_shop.conversations()
    reply = llm_shop.messages(conversation["id"])[1]
    assert reply["llm_provider"] == "openai:gpt-test"
    assert reply["grounded"] is True
    assert reply["prompt_tokens"] > 0
    assert reply["completion_tokens"] > 0
    assert any(s["cited"] for s in reply["sources"])


async def test_personal_data_is_redacted_before_it_reaches_the_model(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    llm.reply_next(Reply(content="We will write to [email 1] about the return [1]."))
    llm_shop.says(
        "What is your return policy? Mail me at ada.lovelace@example.com or +44 20 7946 0958, "
        "card 4111 1111 1111 1111"
    )
    await llm_shop.work()
    prompt = _prompt_text(_chat_requests(llm)[0])
    for secret in ("ada.lovelace@example.com", "7946 0958", "4111 1111 1111 1111"):
        assert secret not in prompt
    # The placeholder the model used comes back as the customer's own address.
    [sent] = llm_shop.sent_to(CUSTOMER)
    assert "ada.lovelace@example.com" in sent


async def test_no_other_customer_s_words_reach_the_prompt(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    llm_shop.says("What is your return policy? My name is Grace Hopper", wa_id="15550009999")
    await llm_shop.work()
    llm_shop.says("How long does shipping take?")
    await llm_shop.work()
    second = _prompt_text(_chat_requests(llm)[1])
    assert "Grace Hopper" not in second
    assert "How long does shipping take?" in second


async def test_the_conversation_s_own_turns_are_the_history(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    llm.reply_next(Reply(content="Returns are free within 30 days [1]."))
    llm_shop.says("What is your return policy?")
    await llm_shop.work()
    llm.reply_next(Reply(content="Orders arrive in 3 to 5 days [1]."))
    llm_shop.says("And how long does shipping take?")
    await llm_shop.work()
    messages = _chat_requests(llm)[1]["messages"]
    roles = [m["role"] for m in messages]
    assert roles[:3] == ["system", "user", "assistant"]
    assert "What is your return policy?" in messages[1]["content"]
    assert "Returns are free within 30 days" in messages[2]["content"]


async def test_the_model_can_search_again_through_a_tool_call(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    llm.reply_next(
        Reply(tool_calls=(ScriptedToolCall("search_knowledge", {"query": "shipping time"}),)),
        Reply(content="Returns within 30 days [1]; shipping takes 3 to 5 days [2]."),
    )
    llm_shop.says("What is your return policy, and shipping?")
    await llm_shop.work()
    first, second = _chat_requests(llm)
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool"
    assert SHIPPING_QA["answer"] in tool_message["content"]
    [sent] = llm_shop.sent_to(CUSTOMER)
    assert "[2] How long does shipping take?" in sent
    assert first["messages"][0] == second["messages"][0]


async def test_the_model_can_hand_off_through_a_tool_call(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    llm.reply_next(
        Reply(
            tool_calls=(
                ScriptedToolCall("handoff_to_human", {"reason": "Refund dispute over 500 EUR"}),
            )
        )
    )
    llm_shop.says("What is your return policy for a broken order worth 600 EUR?")
    await llm_shop.work()
    [conversation] = llm_shop.conversations()
    assert conversation["state"] == "waiting_for_human"
    assert conversation["handoff_reason"] == "Refund dispute over 500 EUR"
    assert "person from our team" in llm_shop.sent_to(CUSTOMER)[0]


async def test_a_failing_model_degrades_to_the_offline_answer(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    llm.fail_next(*[Fault(500)] * 5)
    llm_shop.says("What is your return policy?")
    await llm_shop.work()
    [sent] = llm_shop.sent_to(CUSTOMER)
    assert RETURNS_QA["answer"] in sent
    reply = llm_shop.messages(llm_shop.conversations()[0]["id"])[1]
    assert reply["llm_provider"] == "extractive"


async def test_without_a_grounding_source_the_model_is_not_asked(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    llm_shop.says("Can you recommend a good submarine?")
    await llm_shop.work()
    assert _chat_requests(llm) == []
    [sent] = llm_shop.sent_to(CUSTOMER)
    assert "connect you with a person" in sent
