"""An answer's tokens are those of every model call it made: a tool round and the final
answer both count (analytics' model usage and cost read them from the message)."""

from __future__ import annotations

import json

import pytest

from cybergine.settings import Settings
from tests.support.openai_simulator import OpenAISimulator, Reply, ScriptedToolCall
from tests.support.openai_simulator import _approximate_tokens as tokens
from tests.support.whatsapp import Shop

CHAT = "/v1/chat/completions"
FINAL = "Returns within 30 days [1]; shipping takes 3 to 5 days [2]."


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"outbound_allowed_hosts": "127.0.0.1"})


async def test_every_call_of_an_answer_counts_in_its_tokens(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    search = ScriptedToolCall("search_knowledge", {"query": "shipping time"})
    llm.reply_next(Reply(tool_calls=(search,)), Reply(content=FINAL))
    llm_shop.says("What is your return policy, and shipping?")
    await llm_shop.work()

    requests = [received.body for received in llm.received(CHAT)]
    assert len(requests) == 2
    # What the simulator reported for each call: its prompt's and its completion's tokens.
    prompts = [
        sum(
            tokens(json.dumps(m.get("content")) + json.dumps(m.get("tool_calls")))
            for m in body["messages"]
        )
        for body in requests
    ]
    completions = [tokens(f" search_knowledge {json.dumps(search.arguments)}"), tokens(FINAL)]
    [conversation] = llm_shop.conversations()
    answer = llm_shop.messages(conversation["id"])[1]
    assert answer["prompt_tokens"] == sum(prompts)
    assert answer["completion_tokens"] == sum(completions)
    assert answer["prompt_tokens"] > prompts[1]  # not only the last call's
