"""``GET /api/v1/analytics/knowledge-gaps`` over real HTTP with a viewer's key (the least
role that may read analytics), on the history of ``gap_history.py``: the groups and their
counts, the drill-down to exactly their conversations, the pre-filled answer link, the
filters' refusals as problem+json, and another organisation's ids."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cybergine.accounts.models import Role
from cybergine.db.engine import Database
from cybergine.knowledge.embeddings import LocalMiniLM
from tests.analytics.gap_history import GIFT_CARDS, SHIPPING, GapHistory, seeded
from tests.support.factories import make_api_key
from tests.support.server import LiveServer

PATH = "/api/v1/analytics/knowledge-gaps"


@pytest.fixture(scope="module")
def minilm() -> LocalMiniLM:
    return LocalMiniLM()


@dataclass
class Api:
    history: GapHistory
    other_organisation_id: uuid.UUID
    api: httpx.Client
    other: httpx.Client

    def period(self, **extra: Any) -> dict[str, Any]:
        today = datetime.now(UTC).date()
        return {"from": self.history.first.date().isoformat(), "to": today.isoformat(), **extra}


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
        yield Api(history, other_id, api, other)


def _meaning(group: dict[str, Any]) -> str:
    texts = {e["question"] for e in group["examples"]}
    return "shipping" if texts & set(SHIPPING) else "gift_cards" if texts & set(GIFT_CARDS) else "?"


async def test_the_groups_of_the_period_with_counts_examples_and_links(world: Api) -> None:
    response = world.api.get(PATH, params=world.period())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["questions"] == 8
    assert [_meaning(g) for g in body["groups"]] == ["shipping", "gift_cards"]
    shipping, gifts = body["groups"]
    assert (shipping["questions"], shipping["conversations"], shipping["handoffs"]) == (5, 4, 1)
    assert (gifts["questions"], gifts["conversations"], gifts["fallbacks"]) == (3, 3, 3)
    assert [e["question"] for e in gifts["examples"]] == list(reversed(GIFT_CARDS))
    assert shipping["answered"] is False
    assert shipping["asked_since_answer"] == 0

    # The drill-down lists exactly the conversations behind the group.
    listed = world.api.get(shipping["conversations_url"])
    assert listed.status_code == 200, listed.text
    assert {c["id"] for c in listed.json()["items"]} == {
        str(c) for c in world.history.shipping_conversations
    }
    # "Answer this": the Q&A form with the representative question and the group.
    link = urlsplit(shipping["answer_url"])
    assert link.path == "/knowledge/qa"
    query = parse_qs(link.query)
    assert query["question"] == [shipping["representative"]]
    assert query["gap"] == [shipping["id"]]
    example = shipping["examples"][0]
    assert world.api.get(example["conversation_url"]).json()["id"] == example["conversation_id"]


async def test_filters_and_limit(world: Api) -> None:
    by_b = world.api.get(PATH, params=world.period(assistant_id=str(world.history.assistant_b)))
    assert [g["questions"] for g in by_b.json()["groups"]] == [1]
    webchat = world.api.get(PATH, params=world.period(channel="webchat")).json()
    assert webchat["questions"] == 1
    # The drill-down keeps the filters: shipping on WhatsApp is three of its conversations.
    whatsapp = world.api.get(PATH, params=world.period(channel="whatsapp")).json()
    shipping = next(g for g in whatsapp["groups"] if _meaning(g) == "shipping")
    assert "channel=whatsapp" in shipping["conversations_url"]
    listed = world.api.get(shipping["conversations_url"]).json()["items"]
    assert len(listed) == 3
    assert {c["channel"] for c in listed} == {"whatsapp"}
    a_only = world.period(assistant_id=str(world.history.assistant_a))
    shipping = next(
        g for g in world.api.get(PATH, params=a_only).json()["groups"] if _meaning(g) == "shipping"
    )
    assert len(world.api.get(shipping["conversations_url"]).json()["items"]) == 3
    first = world.api.get(PATH, params=world.period(limit=1)).json()
    assert [_meaning(g) for g in first["groups"]] == ["shipping"]
    assert first["questions"] == 8


async def test_refusals_are_problem_json(world: Api) -> None:
    for params, status in (
        (world.period(assistant_id=str(uuid.uuid4())), 404),
        (world.period(timezone="Mars/Olympus"), 422),
        (world.period(limit=0), 422),
        ({"from": "2026-03-02", "to": "2026-03-01"}, 422),
    ):
        response = world.api.get(PATH, params=params)
        assert response.status_code == status, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_another_organisations_gaps_and_assistants_stay_out_of_reach(world: Api) -> None:
    mine = world.api.get(PATH, params=world.period()).json()
    # Their assistant is as unknown as a missing one.
    response = world.other.get(
        PATH, params=world.period(assistant_id=str(world.history.assistant_a))
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    # Their list shows only their own question.
    theirs = world.other.get(PATH, params=world.period()).json()
    assert theirs["questions"] == 1
    assert {g["id"] for g in theirs["groups"]}.isdisjoint({g["id"] for g in mine["groups"]})
    # A's group named in B's drill-down lists none of A's conversations.
    listed = world.other.get(mine["groups"][0]["conversations_url"])
    assert listed.status_code == 200
    assert listed.json()["items"] == []


async def test_the_drill_down_needs_its_period(world: Api) -> None:
    response = world.api.get("/api/v1/conversations", params={"knowledge_gap": str(uuid.uuid4())})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_route_is_documented(live_server: LiveServer) -> None:
    with live_server.client() as client:
        spec = client.get("/api/v1/openapi.json").json()
    operation = spec["paths"][PATH]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"from", "to", "timezone", "assistant_id", "channel", "limit"} <= names
    assert "knowledge_gap" in {
        p["name"] for p in spec["paths"]["/api/v1/conversations"]["get"]["parameters"]
    }
