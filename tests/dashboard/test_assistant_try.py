"""The "Try it" panel over real HTTP: the panel on the assistant's page, a question answered
as one turn with why, the earlier turns sent back by the page, a blank question refused
under the text box, and people who may not change assistants kept out."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text

from cybergine.accounts.models import Role
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, add_member, make_api_key, make_organisation
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

RETURNS = {
    "question": "What is your return policy?",
    "answer": "You can return any item within 30 days of delivery for a full refund.",
}


@dataclass
class Shop:
    organisation_id: uuid.UUID
    assistant_id: str
    owner: Browser
    api: httpx.Client

    @property
    def try_url(self) -> str:
        return f"/assistants/{self.assistant_id}/try"

    def ask(self, question: str, history: list[tuple[str, str]] | None = None) -> httpx.Response:
        token = self.owner.csrf(f"/assistants/{self.assistant_id}")
        form: dict[str, str | list[str]] = {
            "csrf_token": token,
            "text": question,
            "history_role": [role for role, _ in history or []],
            "history_text": [said for _, said in history or []],
        }
        return self.owner.http.post(self.try_url, data=form, headers={"hx-request": "true"})


@pytest.fixture
async def shop(
    live_server: LiveServer, database: Database, settings: Settings, browser: Browser
) -> AsyncIterator[Shop]:
    organisation, owner = await make_organisation(database, name="Corner Shop")
    key = await make_api_key(database, organisation.id)
    assert browser.sign_in(owner.email, PASSWORD).status_code == 303
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        created = api.post("/api/v1/assistants", json={"name": "Mia"})
        assert created.status_code == 201, created.text
        assert api.post("/api/v1/knowledge/qa", json=RETURNS).status_code == 202
        await run_jobs(database, settings)  # index the knowledge base
        yield Shop(organisation.id, created.json()["id"], browser, api)


def _hidden_turns(page: str) -> list[tuple[str, str]]:
    roles = re.findall(r'name="history_role" value="([^"]*)"', page)
    texts = [html.unescape(t) for t in re.findall(r'name="history_text" value="([^"]*)"', page)]
    return list(zip(roles, texts, strict=True))


def test_the_assistant_page_holds_the_panel(shop: Shop) -> None:
    page = shop.owner.get(f"/assistants/{shop.assistant_id}")
    assert page.status_code == 200
    assert 'id="try-log"' in page.text
    assert 'aria-live="polite"' in page.text
    assert '<label for="try-text">Your question</label>' in page.text
    assert f'hx-post="/assistants/{shop.assistant_id}/try"' in page.text
    assert "Start over" in page.text
    # The offline responder says what it ignores, and where to connect a model.
    assert 'data-testid="try-offline-note"' in page.text
    assert "ignores the persona, tone and instructions" in page.text
    assert 'href="#model"' in page.text


def test_a_question_comes_back_as_a_turn_with_why(shop: Shop) -> None:
    response = shop.ask("What is your return policy?")
    assert response.status_code == 200, response.text
    turn = response.text
    assert "What is your return policy?" in turn
    assert RETURNS["answer"] in turn
    assert "Answered" in turn
    assert "<summary>Why this answer</summary>" in turn
    assert "Quoted from the best-matching source" in turn
    assert "offline responder" in turn
    assert re.search(r"score \d\.\d\d", turn)
    assert "used [1]" in turn
    # The disclosure a customer's first reply starts with.
    assert "try-disclosure" in turn
    # The text box comes back empty, out of band.
    assert 'id="try-compose" hx-swap-oob="true"' in turn
    assert _hidden_turns(turn) == [
        ("customer", "What is your return policy?"),
        ("assistant", RETURNS["answer"]),
    ]


def test_the_earlier_turns_travel_with_the_next_question(shop: Shop) -> None:
    first = shop.ask("What is your return policy?")
    history = _hidden_turns(first.text)
    again = shop.ask("What is your return policy?", history)
    assert again.status_code == 200
    # Not the conversation's first reply any more: no disclosure this time.
    assert "try-disclosure" in first.text
    assert "try-disclosure" not in again.text


def test_a_hand_off_and_a_fallback_say_so(shop: Shop) -> None:
    handed = shop.ask("I want to talk to a human")
    assert handed.status_code == 200
    assert "Handed to a person" in handed.text
    assert "asks for a person" in handed.text
    # A platform notice is not remembered as the assistant's words.
    assert _hidden_turns(handed.text) == [("customer", "I want to talk to a human")]

    fell = shop.ask("Can you recommend a good submarine?")
    assert "Fell back" in fell.text
    assert "fallback message" in fell.text


def test_a_blank_question_is_refused_under_the_text_box(shop: Shop) -> None:
    response = shop.ask("   ")
    assert response.status_code == 422
    assert response.headers["hx-retarget"] == "#try-compose"
    assert response.headers["hx-reswap"] == "outerHTML"
    assert 'aria-invalid="true"' in response.text
    assert 'aria-describedby="try-text-error"' in response.text
    assert 'id="try-text-error"' in response.text
    assert "empty" in response.text


async def test_nothing_of_the_test_chat_is_stored(shop: Shop, database: Database) -> None:
    tables = ("customers", "conversations", "messages", "procrastinate_jobs")

    async def counts() -> list[int]:
        async with database.transaction() as session:
            return [
                int(await session.scalar(text(f"SELECT count(*) FROM {t}")) or 0) for t in tables
            ]

    before = await counts()
    assert shop.ask("What is your return policy?").status_code == 200
    assert shop.ask("I want to talk to a human").status_code == 200
    assert await counts() == before


async def test_only_people_who_change_assistants_may_try_them(
    shop: Shop, live_server: LiveServer, database: Database
) -> None:
    viewer, _ = await add_member(database, shop.organisation_id, Role.VIEWER)
    person = Browser(live_server.url)
    try:
        assert person.sign_in(viewer.email, PASSWORD).status_code == 303
        page = person.get(f"/assistants/{shop.assistant_id}")
        assert page.status_code == 200
        assert 'id="try-log"' not in page.text
        assert "Trying the assistant is for people who can change it" in page.text
        refused = person.post(
            shop.try_url, {"text": "What is your return policy?"}, csrf=person.csrf()
        )
        assert refused.status_code == 403
    finally:
        person.close()


def test_without_the_csrf_token_nothing_is_asked(shop: Shop) -> None:
    response = shop.owner.http.post(shop.try_url, data={"text": "What is your return policy?"})
    assert response.status_code == 403
