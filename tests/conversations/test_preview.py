"""The assistant's test chat (``POST /api/v1/assistants/{id}/preview``): the answer a
customer would get, decided by the reply pipeline's own code, with the reasons; and
nothing of it stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.openai_simulator import Fault, OpenAISimulator, Reply, ScriptedToolCall
from tests.support.whatsapp import RETURNS_QA, SHIPPING_QA, Shop

CUSTOMER = "15550001111"
CHAT = "/v1/chat/completions"
STORED_TABLES = (
    "customers",
    "conversations",
    "messages",
    "procrastinate_jobs",
    "whatsapp_webhook_events",
)


def _preview(shop: Shop, question: str, **body: Any) -> dict[str, Any]:
    response = shop.api.post(
        f"/api/v1/assistants/{shop.assistant_id}/preview", json={"text": question, **body}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _counts(database: Database) -> dict[str, int]:
    async with database.transaction() as session:
        counts = {
            table: int(await session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
            for table in STORED_TABLES
        }
        # The audit log keeps one mark that the organisation tried an assistant (for the
        # getting-started checklist), never the chat itself.
        counts["audit_events"] = int(
            await session.scalar(
                text("SELECT count(*) FROM audit_events WHERE action <> 'assistant.tried'")
            )
            or 0
        )
        return counts


async def _tried_marks(database: Database) -> int:
    async with database.transaction() as session:
        return int(
            await session.scalar(
                text("SELECT count(*) FROM audit_events WHERE action = 'assistant.tried'")
            )
            or 0
        )


async def test_the_preview_answers_as_the_pipeline_does(shop: Shop) -> None:
    question = "What is your return policy?"
    preview = _preview(shop, question)

    shop.says(question)
    await shop.work()
    [conversation] = shop.conversations()
    stored = shop.messages(conversation["id"])[1]

    assert preview["outcome"] == "answered"
    assert preview["responder"] == "extractive"
    assert preview["text"] == RETURNS_QA["answer"]
    # The customer's copy: the disclosure first (a first reply), the source line last.
    assert stored["text"] == (
        f"{preview['disclosure']}\n\n{preview['text']}\n\nSource: {RETURNS_QA['question']}"
    )
    cited = [s for s in preview["sources"] if s["cited"]]
    assert [s["document_id"] for s in cited] == [s["item_id"] for s in stored["sources"]]
    assert [s["title"] for s in cited] == [RETURNS_QA["question"]]
    assert cited[0]["above_threshold"] is True
    assert cited[0]["score"] > 0
    assert "Quoted from the best-matching source" in preview["reason"]
    assert "No model is connected" in preview["reason"]
    # The same question later in the test chat: no disclosure then.
    again = _preview(
        shop,
        question,
        history=[
            {"role": "customer", "text": question},
            {"role": "assistant", "text": preview["text"]},
        ],
    )
    assert again["disclosure"] is None
    assert again["text"] == preview["text"]


async def test_a_request_for_a_person_or_a_hand_off_word_hands_off(shop: Shop) -> None:
    asked = _preview(shop, "I want to talk to a human please")
    assert asked["outcome"] == "handed_off"
    assert asked["system"] is True
    assert "asks for a person" in asked["reason"]
    assert "person from our team" in asked["text"]
    assert asked["sources"] == []

    patched = shop.api.patch(
        f"/api/v1/assistants/{shop.assistant_id}", json={"handoff_keywords": ["chargeback"]}
    )
    assert patched.status_code == 200, patched.text
    keyword = _preview(shop, "What about a chargeback on my card?")
    assert keyword["outcome"] == "handed_off"
    assert keyword["handed_off_by"] == "chargeback"
    assert 'hand-off word "chargeback"' in keyword["reason"]


async def test_outside_business_hours_the_hand_off_says_when_the_team_opens(shop: Shop) -> None:
    closed = {"timezone": "UTC", "days": {}}  # never open
    patched = shop.api.patch(
        f"/api/v1/assistants/{shop.assistant_id}", json={"business_hours": closed}
    )
    assert patched.status_code == 200, patched.text
    answer = _preview(shop, "Can I speak to an agent?")
    assert answer["outcome"] == "handed_off"
    assert answer["within_business_hours"] is False
    assert "closed right now" in answer["text"]
    assert "outside your business hours" in answer["reason"]


async def test_a_question_with_no_source_gets_the_fallback_and_says_why(shop: Shop) -> None:
    answer = _preview(shop, "Can you recommend a good submarine?")
    assert answer["outcome"] == "fallback"
    assert answer["offers_person"] is True
    assert "fallback message" in answer["reason"]
    assert not any(s["cited"] for s in answer["sources"])
    assert all(not s["above_threshold"] for s in answer["sources"])
    assert answer["threshold"]


async def test_a_greeting_is_greeted_without_a_search(shop: Shop) -> None:
    answer = _preview(shop, "Hello!")
    assert answer["outcome"] == "greeted"
    assert answer["sources"] == []
    assert "greeting" in answer["reason"]


async def test_nothing_of_a_test_chat_is_stored(shop: Shop, database: Database) -> None:
    before = await _counts(database)
    _preview(shop, "What is your return policy?")
    _preview(shop, "I want to talk to a human")
    _preview(
        shop,
        "How long does shipping take?",
        history=[{"role": "customer", "text": "hi"}, {"role": "assistant", "text": "Hello!"}],
    )
    assert await _counts(database) == before
    assert await _tried_marks(database) == 1


def test_an_empty_or_oversized_question_is_refused(shop: Shop) -> None:
    url = f"/api/v1/assistants/{shop.assistant_id}/preview"
    blank = shop.api.post(url, json={"text": "   \n\t "})
    assert blank.status_code == 422
    assert "empty" in blank.json()["detail"]
    assert shop.api.post(url, json={"text": "x" * 5000}).status_code == 422
    too_long_history = [{"role": "customer", "text": "hi"}] * 41
    assert shop.api.post(url, json={"text": "hi", "history": too_long_history}).status_code == 422


# --- With a model --------------------------------------------------------------------


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The model server the assistants use runs on this machine: the operator allows it.
    return settings.model_copy(update={"outbound_allowed_hosts": "127.0.0.1"})


async def test_with_a_model_the_preview_names_it_and_counts_tokens(
    llm_shop: Shop, llm: OpenAISimulator
) -> None:
    llm.reply_next(
        Reply(tool_calls=(ScriptedToolCall("search_knowledge", {"query": "shipping time"}),)),
        Reply(content="Returns within 30 days [1]; shipping takes 3 to 5 days [2]."),
    )
    answer = _preview(
        llm_shop,
        "What is your return policy, and shipping? Mail me at ada@example.com",
        history=[{"role": "customer", "text": "hi"}, {"role": "assistant", "text": "Hello!"}],
    )
    assert answer["outcome"] == "answered"
    assert answer["responder"] == "model"
    assert answer["provider"] == "openai:gpt-test"
    assert answer["prompt_tokens"] > 0
    assert answer["completion_tokens"] > 0
    assert answer["redacted"] is True
    assert answer["model_error"] is None
    assert {s["title"] for s in answer["sources"] if s["cited"]} == {
        RETURNS_QA["question"],
        SHIPPING_QA["question"],
    }
    first = llm.received(CHAT)[0].body
    prompt = json.dumps(first["messages"])
    assert "ada@example.com" not in prompt  # redaction as configured
    assert [m["role"] for m in first["messages"][:3]] == ["system", "user", "assistant"]


async def test_a_failing_model_is_a_readable_outcome(
    llm_shop: Shop, llm: OpenAISimulator, database: Database
) -> None:
    before = await _counts(database)
    llm.fail_next(*[Fault(500)] * 5)
    answer = _preview(llm_shop, "What is your return policy?")
    assert answer["outcome"] == "answered"
    assert answer["responder"] == "extractive"
    assert answer["model_error"]
    assert "The model could not be used" in answer["reason"]
    assert answer["text"] == RETURNS_QA["answer"]
    assert await _counts(database) == before
