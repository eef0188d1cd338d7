"""Top questions on the hand-built history of ``gap_history.py``, over real HTTP with a
viewer's key (the least role that may read analytics): every question the assistant
answered, grouped by meaning, with how many were answered from a source; the same groups
as the knowledge gaps, which count only their fallbacks and hand-offs; the drill-down to
exactly the conversations behind a group; a tap on a list row counted as no question;
refusals as problem+json and another organisation's ids."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cybergine.accounts.models import Role
from cybergine.analytics.gap_models import GapQuestion
from cybergine.conversations.models import Message
from cybergine.db.engine import Database
from cybergine.knowledge.embeddings import LocalMiniLM
from tests.analytics.gap_history import (
    GIFT_CARDS,
    NOISE,
    RETURNS,
    SHIPPING,
    SHIPPING_ANSWERED,
    GapHistory,
    seeded,
)
from tests.support.factories import make_api_key
from tests.support.server import LiveServer

PATH = "/api/v1/analytics/top-questions"
GAPS = "/api/v1/analytics/knowledge-gaps"
MEANINGS = {
    "shipping": {*SHIPPING, SHIPPING_ANSWERED},
    "returns": set(RETURNS),
    "gift_cards": set(GIFT_CARDS),
    "opening_hours": {NOISE[0]},
    "order": {NOISE[1]},
}


@pytest.fixture(scope="module")
def minilm() -> LocalMiniLM:
    return LocalMiniLM()


@dataclass
class Api:
    history: GapHistory
    other_organisation_id: uuid.UUID
    api: httpx.Client
    other: httpx.Client
    database: Database

    def period(self, **extra: Any) -> dict[str, Any]:
        today = datetime.now(UTC).date()
        return {"from": self.history.first.date().isoformat(), "to": today.isoformat(), **extra}

    def groups(self, path: str = PATH, **extra: Any) -> dict[str, dict[str, Any]]:
        response = self.api.get(path, params=self.period(**extra))
        assert response.status_code == 200, response.text
        return {_meaning(group): group for group in response.json()["groups"]}


@pytest.fixture
async def world(
    live_server: LiveServer, database: Database, minilm: LocalMiniLM
) -> AsyncIterator[Api]:
    history, other_id = await seeded(database, minilm)
    key = await make_api_key(database, history.organisation_id, Role.VIEWER)
    other_key = await make_api_key(database, other_id, Role.VIEWER)
    with (
        live_server.client(headers={"authorization": f"Bearer {key}"}) as api,
        live_server.client(headers={"authorization": f"Bearer {other_key}"}) as other,
    ):
        yield Api(history, other_id, api, other, database)


def _meaning(group: dict[str, Any]) -> str:
    texts = {e["question"] for e in group["examples"]} | {group["representative"]}
    [meaning] = [name for name, questions in MEANINGS.items() if texts & questions]
    return meaning


def _figures(group: dict[str, Any]) -> tuple[int, ...]:
    keys = ("questions", "conversations", "grounded", "fallbacks", "handoffs")
    return tuple(group[key] for key in keys)


async def test_every_answered_question_grouped_by_meaning_most_asked_first(world: Api) -> None:
    response = world.api.get(PATH, params=world.period())
    assert response.status_code == 200, response.text
    body = response.json()
    # The gift card question before the period, the greeting, the photo, the customer's
    # request for a person, the unlinked fallback and the tap are not counted.
    assert body["questions"] == 15
    meanings = [_meaning(g) for g in body["groups"]]
    assert meanings[:3] == ["shipping", "returns", "gift_cards"]
    assert sorted(meanings[3:]) == ["opening_hours", "order"]
    shipping, returns, gifts = body["groups"][:3]
    # The web chat customer asked about shipping to Canada twice: answered, then not.
    assert _figures(shipping) == (6, 4, 1, 4, 1)
    assert shipping["grounded_rate"] == pytest.approx(1 / 6)
    assert _figures(returns) == (4, 3, 4, 0, 0)
    assert returns["grounded_rate"] == 1.0
    assert _figures(gifts) == (3, 3, 0, 3, 0)
    assert {e["question"] for e in returns["examples"]} == set(RETURNS)
    assert {e["cause"] for e in shipping["examples"]} == {"grounded", "fallback", "handoff"}
    assert body["period"]["from"] == world.history.first.date().isoformat()


async def test_the_knowledge_gaps_are_the_same_groups_counting_their_gaps_only(
    world: Api,
) -> None:
    top, gaps = world.groups(), world.groups(GAPS)
    assert set(gaps) == {"shipping", "gift_cards"}
    for meaning, gap in gaps.items():
        assert gap["id"] == top[meaning]["id"]
    # The web chat conversation's grounded answer came first: its fallback still counts
    # the conversation among the gap's.
    assert (gaps["shipping"]["questions"], gaps["shipping"]["conversations"]) == (5, 4)
    assert {e["question"] for e in gaps["shipping"]["examples"]} == set(SHIPPING)


async def test_filters_narrow_the_counts(world: Api) -> None:
    webchat = world.groups(channel="webchat")
    assert set(webchat) == {"shipping"}
    assert _figures(webchat["shipping"]) == (2, 1, 1, 1, 0)
    by_b = world.groups(assistant_id=str(world.history.assistant_b))
    assert _figures(by_b["shipping"]) == (2, 1, 1, 1, 0)
    assert len(world.api.get(PATH, params=world.period(limit=2)).json()["groups"]) == 2


async def test_drill_down_lists_exactly_the_conversations_behind_a_group(world: Api) -> None:
    top = world.groups()
    for meaning, conversations in (
        ("shipping", world.history.shipping_conversations),
        ("returns", world.history.return_conversations),
    ):
        listed = world.api.get(top[meaning]["conversations_url"])
        assert listed.status_code == 200, listed.text
        assert {c["id"] for c in listed.json()["items"]} == {str(c) for c in conversations}
    # A returns question was never a gap: as a knowledge gap it names no conversation.
    url = top["returns"]["conversations_url"].replace("top_question=", "knowledge_gap=")
    assert world.api.get(url).json()["items"] == []


async def test_a_tap_on_a_list_row_is_no_question(world: Api) -> None:
    async with world.database.transaction() as session:
        tapped = await session.scalar(select(Message.id).where(Message.text == "Blue T-shirt"))
        collected = await session.scalar(
            select(GapQuestion.id).where(GapQuestion.message_id == tapped)
        )
    assert tapped is not None
    assert collected is None


async def test_refusals_are_problem_json(world: Api) -> None:
    for params, status in (
        (world.period(limit=0), 422),
        (world.period(limit=101), 422),
        ({"from": "2026-13-01"}, 422),
        (world.period(assistant_id=str(uuid.uuid4())), 404),
    ):
        response = world.api.get(PATH, params=params)
        assert response.status_code == status, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    # Another organisation's top question names none of its conversations.
    shipping = world.groups()["shipping"]
    url = shipping["conversations_url"]
    assert world.other.get(url).json()["items"] == []
    both = world.api.get(url + f"&knowledge_gap={shipping['id']}")
    assert both.status_code == 422
    assert both.json()["field"] == "top_question"


async def test_the_route_is_documented(world: Api) -> None:
    schema = world.api.get("/api/v1/openapi.json").json()
    route = schema["paths"][PATH]["get"]
    assert {p["name"] for p in route["parameters"]} >= {
        "from",
        "to",
        "timezone",
        "assistant_id",
        "channel",
        "limit",
    }
    assert "top_question" in {
        p["name"] for p in schema["paths"]["/api/v1/conversations"]["get"]["parameters"]
    }
