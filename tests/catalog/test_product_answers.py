"""Products in conversations, end to end over the web chat API: the offline responder
answers a product question with the right cards and a plain-text rendering, a mixed
organisation keeps its knowledge answers, an organisation without a catalogue answers as
before, and a model's search_products tool call goes over real HTTP (the OpenAI
simulator) and is scoped to the conversation's organisation."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.catalog import SHOES
from tests.support.factories import make_organisation_with_key
from tests.support.jobs import run_jobs
from tests.support.openai_simulator import OpenAISimulator, Reply, ScriptedToolCall, tool_results
from tests.support.server import LiveServer

SITE = "https://shop.example"
RETURNS = {
    "question": "What is your return policy?",
    "answer": "You can return any item within 30 days of delivery for a full refund.",
}
EXAMPLE = "do you have waterproof trail shoes under 100 EUR in size 42?"


@dataclass
class Chat:
    http: httpx.Client
    api: httpx.Client
    widget_key: str
    assistant_id: str
    database: Database
    settings: Settings

    def ask(self, text: str) -> None:
        self.token = getattr(self, "token", None) or self._start()
        sent = self.http.post(
            "/widget/v1/messages",
            json={"text": text, "client_id": uuid.uuid4().hex},
            headers={"Origin": SITE, "Authorization": f"Bearer {self.token}"},
        )
        assert sent.status_code == 202, sent.text

    def _start(self) -> str:
        started = self.http.post(
            "/widget/v1/session", json={"widget_key": self.widget_key}, headers={"Origin": SITE}
        )
        assert started.status_code == 200, started.text
        token: str = started.json()["visitor_token"]
        return token

    def answers(self) -> list[dict[str, Any]]:
        history = self.http.post(
            "/widget/v1/session",
            json={"widget_key": self.widget_key, "visitor_token": self.token},
            headers={"Origin": SITE},
        ).json()["messages"]
        return [m for m in history if m["sender"] == "assistant"]

    async def reply(self, text: str) -> dict[str, Any]:
        before = len(self.answers()) if getattr(self, "token", None) else 0
        self.ask(text)
        await run_jobs(self.database, self.settings)
        answers = self.answers()
        assert len(answers) == before + 1, answers
        return answers[-1]

    def add_products(self, products: dict[str, dict[str, Any]]) -> None:
        for data in products.values():
            created = self.api.post("/api/v1/catalog/products", json=data)
            assert created.status_code == 201, created.text


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The model server runs on this machine: the operator allows it.
    return settings.model_copy(update={"outbound_allowed_hosts": "127.0.0.1"})


@pytest.fixture
def llm() -> Iterator[OpenAISimulator]:
    with OpenAISimulator() as simulator:
        yield simulator


async def _chat(
    live_server: LiveServer,
    database: Database,
    settings: Settings,
    *,
    knowledge: bool = True,
    products: bool = True,
    assistant: dict[str, Any] | None = None,
) -> Chat:
    _, key = await make_organisation_with_key(database, name=f"Shop {uuid.uuid4().hex[:6]}")
    api = live_server.client(headers={"authorization": f"Bearer {key}"})
    created = api.post(
        "/api/v1/assistants",
        json={"name": "Mia", "allowed_origins": [SITE], **(assistant or {})},
    )
    assert created.status_code == 201, created.text
    chat = Chat(
        live_server.client(),
        api,
        created.json()["widget_key"],
        created.json()["id"],
        database,
        settings,
    )
    if knowledge:
        assert api.post("/api/v1/knowledge/qa", json=RETURNS).status_code == 202
    if products:
        chat.add_products(SHOES)
    await run_jobs(database, settings)  # indexing and the products' embeddings
    return chat


async def test_the_example_question_gets_only_in_stock_matches_as_cards(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    chat = await _chat(live_server, database, settings)
    answer = await chat.reply(EXAMPLE)
    cards = answer["products"]
    assert [c["title"] for c in cards] == ["Waterproof Trail Running Shoe"]
    [card] = cards
    assert card["price"] == "89.90"
    assert card["currency"] == "EUR"
    assert card["available"] is True
    assert card["variant"] == "42 / Black"
    # The text says the same, for every channel and the export.
    assert "Here is what I found:" in answer["text"]
    assert "- Waterproof Trail Running Shoe (42 / Black): 89.90 EUR, in stock" in answer["text"]
    for hidden in ("Summit Pro", "Ridge", "Prototype", "Old Trail", "Desert"):
        assert hidden not in answer["text"]


async def test_a_mixed_organisation_keeps_its_knowledge_answers(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    chat = await _chat(live_server, database, settings)
    answer = await chat.reply("What is your return policy?")
    assert RETURNS["answer"] in answer["text"]
    assert answer["products"] == []
    # Asked like a product ("do you have"), but the knowledge base answers it.
    policy = await chat.reply("Do you have a return policy?")
    assert RETURNS["answer"] in policy["text"]
    assert policy["products"] == []
    # Without a stock question, a product out of stock is shown, marked unavailable.
    socks = await chat.reply("I'm looking for merino hiking socks in size L")
    [card] = socks["products"]
    assert (card["title"], card["available"]) == ("Merino Hiking Socks", False)
    assert "out of stock" in socks["text"]
    nothing = await chat.reply("do you have trail shoes under 10 EUR?")
    assert nothing["products"] == []
    assert "couldn't find a product" in nothing["text"]


async def test_the_test_chat_answers_product_questions_as_customers_are(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    chat = await _chat(live_server, database, settings)
    preview = chat.api.post(
        f"/api/v1/assistants/{chat.assistant_id}/preview", json={"text": EXAMPLE}
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["reason_code"] == "products"
    assert (
        "- Waterproof Trail Running Shoe (42 / Black): 89.90 EUR, in stock"
        in preview.json()["text"]
    )


async def test_without_a_catalogue_answers_are_as_before(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    chat = await _chat(live_server, database, settings, products=False)
    answer = await chat.reply("What is your return policy?")
    assert RETURNS["answer"] in answer["text"]
    unanswered = await chat.reply(EXAMPLE)
    assert unanswered["products"] == []
    assert "couldn't find a product" not in unanswered["text"]


async def test_german_and_french_questions(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    chat = await _chat(live_server, database, settings, assistant={"languages": ["de", "fr"]})
    german = await chat.reply("Haben Sie wasserdichte Trail Schuhe unter 100 Euro in Größe 42?")
    assert [c["title"] for c in german["products"]] == ["Waterproof Trail Running Shoe"]
    assert "Das habe ich gefunden:" in german["text"]
    assert "auf Lager" in german["text"]
    french = await chat.reply("Avez-vous des chaussures trail à moins de 100 € en taille 42 ?")
    assert [c["title"] for c in french["products"]] == ["Waterproof Trail Running Shoe"]
    assert "Voici ce que j'ai trouvé" in french["text"]
    nothing = await chat.reply("Haben Sie Trail Schuhe unter 10 Euro?")
    assert "kein passendes Produkt gefunden (höchstens 10 EUR, auf Lager)" in nothing["text"]


async def test_a_colour_with_a_sharp_s_is_found_as_the_customer_writes_it(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    # "Weiß" is white in most German shops. Case-folded it would be "weiss", which the
    # catalogue's lower-cased values are not: the colour would go unrecognised and every
    # shirt be shown.
    chat = await _chat(live_server, database, settings, assistant={"languages": ["de"]})
    chat.add_products(
        {
            title: {
                "title": title,
                "product_type": "Hemd",
                "currency": "EUR",
                "options": [{"name": "Farbe", "values": [colour]}],
                "variants": [{"option1": colour, "price": "39.00", "inventory_quantity": 5}],
            }
            for title, colour in (("Leinen Hemd", "Weiß"), ("Polo Hemd", "Schwarz"))
        }
    )
    await run_jobs(database, settings)
    for question in ("Haben Sie ein Hemd in Weiß?", "Haben Sie ein Hemd in WEIß?"):
        white = await chat.reply(question)
        assert [c["title"] for c in white["products"]] == ["Leinen Hemd"], question
    named = await chat.reply("Gibt es ein Hemd mit Farbe weiß?")
    assert [c["title"] for c in named["products"]] == ["Leinen Hemd"]


async def test_a_model_searches_products_with_the_tool_over_http(
    live_server: LiveServer, database: Database, settings: Settings, llm: OpenAISimulator
) -> None:
    assistant = {
        "llm_provider": "openai",
        "llm_base_url": llm.base_url,
        "llm_api_key": llm.api_key,
        "llm_model": "gpt-test",
    }
    other = await _chat(live_server, database, settings, assistant=assistant)
    chat = await _chat(live_server, database, settings, assistant=assistant)
    llm.reply_next(
        Reply(
            tool_calls=(
                ScriptedToolCall(
                    "search_products",
                    {
                        "query": "waterproof trail shoes",
                        "max_price": 100,
                        "currency": "EUR",
                        "in_stock": True,
                        "options": {"Size": "42"},
                    },
                    id="call_products",
                ),
            )
        ),
        Reply(content="The Waterproof Trail Running Shoe is in stock in 42 for 89.90 EUR."),
    )
    answer = await chat.reply(EXAMPLE)

    first, second = (r.body for r in llm.received("/v1/chat/completions"))
    assert "search_products" in {t["function"]["name"] for t in first["tools"]}
    assert first["tool_choice"] == "auto"
    result = json.loads(tool_results(second)["call_products"])
    assert [p["title"] for p in result["products"]] == ["Waterproof Trail Running Shoe"]
    assert result["products"][0]["available"] is True
    [card] = answer["products"]
    assert card["title"] == "Waterproof Trail Running Shoe"
    assert "\n\nThe Waterproof Trail Running Shoe is in stock in 42" in answer["text"]
    assert "- Waterproof Trail Running Shoe (42 / Black): 89.90 EUR, in stock" in answer["text"]
    # The same products of the other organisation were never returned.
    other_ids = {p["id"] for p in other.api.get("/api/v1/catalog/products").json()["products"]}
    assert card["id"] not in other_ids

    # Arguments a model gets wrong are answered with what is wrong, not an error.
    llm.reply_next(
        Reply(tool_calls=(ScriptedToolCall("search_products", {"max_price": "cheap"}, id="bad"),)),
        Reply(content="Sorry."),
    )
    await chat.reply("anything cheap?")
    last = llm.received("/v1/chat/completions")[-1].body
    assert tool_results(last)["bad"].startswith("Invalid arguments: max_price")


def test_the_simulator_holds_tool_choice_to_openais_rules(llm: OpenAISimulator) -> None:
    with httpx.Client(base_url=llm.base_url) as client:
        headers = {"Authorization": f"Bearer {llm.api_key}"}
        base = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
        tools = [{"type": "function", "function": {"name": "search_products"}}]
        without_tools = client.post(
            "/chat/completions", json={**base, "tool_choice": "auto"}, headers=headers
        )
        assert without_tools.status_code == 400
        unknown = client.post(
            "/chat/completions",
            json={
                **base,
                "tools": tools,
                "tool_choice": {"type": "function", "function": {"name": "nope"}},
            },
            headers=headers,
        )
        assert unknown.status_code == 400
        llm.reply_next(Reply(tool_calls=(ScriptedToolCall("search_products", {"query": "x"}),)))
        told_not_to = client.post(
            "/chat/completions",
            json={**base, "tools": tools, "tool_choice": "none"},
            headers=headers,
        )
        message = told_not_to.json()["choices"][0]["message"]
        assert "tool_calls" not in message
        assert message["content"]
