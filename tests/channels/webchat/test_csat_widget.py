"""CSAT in the web chat, end to end over HTTP: a visitor chats, a person closes the
conversation, the widget receives the survey (stars, not buttons) and posts a rating,
which is recorded once and only for the visitor's own survey."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cybergine.accounts.models import Membership, Role
from cybergine.accounts.principal import Principal
from cybergine.conversations import inbox
from cybergine.conversations.csat_models import CsatSurvey
from cybergine.conversations.models import Conversation
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.settings import Settings
from tests.support.factories import make_organisation_with_key
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

SHOP = "https://shop.example"


@dataclass
class Chat:
    http: httpx.Client
    api: httpx.Client
    key: str
    assistant_id: str
    database: Database
    settings: Settings

    def headers(self, token: str | None = None) -> dict[str, str]:
        found = {"Origin": SHOP}
        if token:
            found["Authorization"] = f"Bearer {token}"
        return found

    def start(self, token: str | None = None) -> dict[str, Any]:
        response = self.http.post(
            "/widget/v1/session",
            json={"widget_key": self.key, "visitor_token": token},
            headers=self.headers(),
        )
        assert response.status_code == 200, response.text
        started: dict[str, Any] = response.json()
        return started

    def say(self, token: str, text: str) -> None:
        response = self.http.post(
            "/widget/v1/messages",
            json={"text": text, "client_id": uuid.uuid4().hex},
            headers=self.headers(token),
        )
        assert response.status_code == 202, response.text

    def rate(self, token: str, survey_id: str, rating: int) -> httpx.Response:
        return self.http.post(
            "/widget/v1/rating",
            json={"survey_id": survey_id, "rating": rating},
            headers=self.headers(token),
        )

    async def close_latest(self) -> None:
        [listed, *_] = self.api.get("/api/v1/conversations").json()["items"]
        async with self.database.transaction() as session:
            conversation = await session.get_one(Conversation, uuid.UUID(listed["id"]))
            organisation_id = conversation.organisation_id
            owner = (
                await session.execute(
                    select(Membership).where(Membership.organisation_id == organisation_id)
                )
            ).scalar_one()
            await inbox.close(
                TenantScope(session, organisation_id),
                Principal(organisation_id, Role.OWNER, user_id=owner.user_id),
                conversation.id,
            )
        await run_jobs(self.database, self.settings)


async def _chat(
    live_server: LiveServer, database: Database, settings: Settings, **assistant: Any
) -> tuple[Chat, httpx.Client]:
    _, key = await make_organisation_with_key(database)
    api = live_server.client(headers={"authorization": f"Bearer {key}"})
    created = api.post(
        "/api/v1/assistants", json={"name": "Mia", "allowed_origins": [SHOP], **assistant}
    )
    assert created.status_code == 201, created.text
    http = live_server.client()
    return Chat(
        http, api, created.json()["widget_key"], created.json()["id"], database, settings
    ), http


@pytest.fixture
async def chat(
    live_server: LiveServer, database: Database, settings: Settings
) -> AsyncIterator[Chat]:
    opened, http = await _chat(live_server, database, settings)
    yield opened
    http.close()
    opened.api.close()


def _survey_of(started: dict[str, Any]) -> dict[str, Any]:
    [message] = [m for m in started["messages"] if "survey" in m]
    found: dict[str, Any] = message
    return found


async def test_the_widget_shows_the_survey_and_records_the_first_rating(chat: Chat) -> None:
    started = chat.start()
    token = started["visitor_token"]
    chat.say(token, "Hello there")
    await run_jobs(chat.database, chat.settings)
    await chat.close_latest()

    message = _survey_of(chat.start(token))
    assert message["sender"] == "system"
    assert message["text"].startswith("How would you rate this conversation?")
    assert message["buttons"] == []  # stars, not the five rows WhatsApp shows
    survey = message["survey"]
    assert survey["rating"] is None

    first = chat.rate(token, survey["id"], 5)
    assert first.status_code == 200, first.text
    assert first.json() == {"survey_id": survey["id"], "rating": 5, "recorded": True}
    second = chat.rate(token, survey["id"], 1)
    assert second.json() == {"survey_id": survey["id"], "rating": 5, "recorded": False}
    # The widget, reloaded, shows the stars given.
    assert _survey_of(chat.start(token))["survey"]["rating"] == 5
    async with chat.database.transaction() as session:
        stored = (await session.execute(select(CsatSurvey))).scalar_one()
    assert (stored.rating, str(stored.id)) == (5, survey["id"])


async def test_a_rating_out_of_range_is_refused(chat: Chat) -> None:
    token = chat.start()["visitor_token"]
    chat.say(token, "Hello there")
    await chat.close_latest()
    survey_id = _survey_of(chat.start(token))["survey"]["id"]
    for rating in (0, 6):
        response = chat.rate(token, survey_id, rating)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_another_visitors_or_organisations_rating_is_not_found(
    chat: Chat, live_server: LiveServer, database: Database, settings: Settings
) -> None:
    token = chat.start()["visitor_token"]
    chat.say(token, "Hello there")
    await chat.close_latest()
    survey_id = _survey_of(chat.start(token))["survey"]["id"]

    stranger = chat.start()["visitor_token"]  # another visitor of the same shop
    assert chat.rate(stranger, survey_id, 1).status_code == 404
    other, http = await _chat(live_server, database, settings)
    try:
        outsider = other.start()["visitor_token"]  # a visitor of another organisation
        assert other.rate(outsider, survey_id, 1).status_code == 404
    finally:
        http.close()
        other.api.close()
    async with database.transaction() as session:
        assert (await session.execute(select(CsatSurvey))).scalar_one().rating is None


async def test_no_survey_when_the_assistant_has_it_off(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    chat, http = await _chat(live_server, database, settings, csat_enabled=False)
    try:
        token = chat.start()["visitor_token"]
        chat.say(token, "Hello there")
        await chat.close_latest()
        assert [m for m in chat.start(token)["messages"] if "survey" in m] == []
    finally:
        http.close()
        chat.api.close()
