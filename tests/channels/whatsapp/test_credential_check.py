"""Connecting a number asks Meta first: a bad token, or a number the token cannot see, is
refused with Meta's message naming the field, and nothing is saved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.db.engine import Database
from tests.support.conversations import digits
from tests.support.factories import make_organisation_with_key
from tests.support.server import LiveServer

BASE = "/api/v1/channels/whatsapp"
TOKEN = "EAAGcheckedToken0123456789"


@pytest.fixture
async def api(
    live_server: LiveServer, database: Database, graph: GraphSimulator
) -> AsyncIterator[httpx.Client]:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as client:
        yield client


def _connect(api: httpx.Client, phone_number_id: str, token: str) -> httpx.Response:
    assistant = api.post("/api/v1/assistants", json={"name": "Mia"})
    assistant_id = assistant.json()["id"] if assistant.status_code == 201 else None
    if assistant_id is None:
        assistant_id = api.get("/api/v1/assistants").json()[0]["id"]
    body: dict[str, Any] = {
        "assistant_id": assistant_id,
        "phone_number_id": phone_number_id,
        "waba_id": digits(),
        "display_phone_number": "+1 555 010 0200",
        "access_token": token,
    }
    return api.post(BASE, json=body)


async def test_a_bad_token_is_refused_with_metas_message(
    api: httpx.Client, graph: GraphSimulator
) -> None:
    phone_number_id = digits()
    graph.add_number(phone_number_id, TOKEN)
    refused = _connect(api, phone_number_id, "EAAGnotTheToken")
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["field"] == "access_token"
    assert "Invalid OAuth access token" in problem["detail"]
    assert "EAAGnotTheToken" not in refused.text
    assert api.get(BASE).json() == []


async def test_a_number_the_token_cannot_see_is_refused(
    api: httpx.Client, graph: GraphSimulator
) -> None:
    mine, theirs = digits(), digits()
    graph.add_number(mine, TOKEN)
    graph.add_number(theirs, "EAAGsomeoneElsesToken")
    for phone_number_id in (theirs, digits()):  # another app's number; no such number
        refused = _connect(api, phone_number_id, TOKEN)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "phone_number_id"
        assert "does not exist" in refused.json()["detail"]
    assert api.get(BASE).json() == []


async def test_good_credentials_connect(api: httpx.Client, graph: GraphSimulator) -> None:
    phone_number_id = digits()
    graph.add_number(phone_number_id, TOKEN)
    created = _connect(api, phone_number_id, TOKEN)
    assert created.status_code == 201, created.text
    assert created.json()["last_webhook_at"] is None
    assert created.json()["last_error"] is None


async def test_meta_out_of_reach_saves_nothing(api: httpx.Client, graph: GraphSimulator) -> None:
    phone_number_id = digits()
    graph.add_number(phone_number_id, TOKEN)
    graph.fail_next(status=503, code=2, endpoint="number")
    answer = _connect(api, phone_number_id, TOKEN)
    assert answer.status_code == 502, answer.text
    assert "try again" in answer.json()["detail"]
    assert api.get(BASE).json() == []


async def test_a_new_token_is_checked_too(api: httpx.Client, graph: GraphSimulator) -> None:
    phone_number_id = digits()
    graph.add_number(phone_number_id, TOKEN)
    number = _connect(api, phone_number_id, TOKEN).json()
    url = f"{BASE}/{number['id']}"
    refused = api.patch(url, json={"access_token": "EAAGwrong"})
    assert refused.status_code == 422
    assert refused.json()["field"] == "access_token"
    graph.add_number(phone_number_id, "EAAGrotated")
    assert api.patch(url, json={"access_token": "EAAGrotated"}).status_code == 200


async def test_meta_is_not_asked_about_a_number_that_could_not_be_saved(
    api: httpx.Client, graph: GraphSimulator
) -> None:
    phone_number_id = digits()
    graph.add_number(phone_number_id, TOKEN)
    assert _connect(api, phone_number_id, TOKEN).status_code == 201
    graph.fail_next(status=503, code=2, endpoint="number")  # would answer 502 if asked
    again = _connect(api, phone_number_id, TOKEN)
    assert again.status_code == 409
