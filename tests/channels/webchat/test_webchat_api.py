"""The web chat API as the widget speaks it: sessions held to the allowed origins, signed
visitor tokens that reach only their own conversation, messages answered through the
reply pipeline, and real-time delivery over a WebSocket (resumable) or long-polling."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.sync.client import ClientConnection, connect

from cybergine.accounts.models import Membership, Role
from cybergine.accounts.principal import Principal
from cybergine.assistants.models import DEFAULT_AI_DISCLOSURE
from cybergine.conversations import inbox
from cybergine.conversations.handback import assistant_back_notice
from cybergine.conversations.models import Conversation
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.settings import Settings
from tests.support.factories import make_organisation_with_key
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

SHOP = "https://shop.example"
RETURNS = {
    "question": "What is your return policy?",
    "answer": "You can return any item within 30 days of delivery for a full refund.",
}


@dataclass
class Widget:
    http: httpx.Client
    api: httpx.Client
    key: str
    assistant_id: str
    server: LiveServer
    database: Database
    settings: Settings

    def session(self, origin: str = SHOP, token: str | None = None) -> httpx.Response:
        return self.http.post(
            "/widget/v1/session",
            json={"widget_key": self.key, "visitor_token": token},
            headers={"Origin": origin},
        )

    def start(self) -> dict[str, Any]:
        response = self.session()
        assert response.status_code == 200, response.text
        started: dict[str, Any] = response.json()
        return started

    def say(
        self, token: str, text: str, *, client_id: str | None = None, origin: str = SHOP
    ) -> httpx.Response:
        return self.http.post(
            "/widget/v1/messages",
            json={"text": text, "client_id": client_id or uuid.uuid4().hex},
            headers={"Origin": origin, "Authorization": f"Bearer {token}"},
        )

    def poll(self, token: str, after: str | None = None) -> dict[str, Any]:
        params = {"after": after} if after else {}
        response = self.http.get(
            "/widget/v1/events",
            params=params,
            headers={"Origin": SHOP, "Authorization": f"Bearer {token}"},
            timeout=40,
        )
        assert response.status_code == 200, response.text
        polled: dict[str, Any] = response.json()
        return polled

    def socket(self, token: str, after: str | None = None, origin: str = SHOP) -> ClientConnection:
        url = self.server.url.replace("http://", "ws://") + f"/widget/v1/socket?token={token}"
        if after:
            url += f"&after={after}"
        return connect(url, origin=origin, open_timeout=5)  # type: ignore[arg-type]

    async def work(self) -> None:
        await run_jobs(self.database, self.settings)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A long poll with nothing new answers after a second here, not 25 s: tests wait
    such polls out."""
    return settings.model_copy(update={"widget_long_poll_seconds": 1.0})


@pytest.fixture
async def widget(
    live_server: LiveServer, database: Database, settings: Settings
) -> AsyncIterator[Widget]:
    _, key = await make_organisation_with_key(database)
    api = live_server.client(headers={"authorization": f"Bearer {key}"})
    created = api.post(
        "/api/v1/assistants",
        json={"name": "Mia", "allowed_origins": [SHOP], "greeting": "Hi, I'm Mia."},
    )
    assert created.status_code == 201, created.text
    assert api.post("/api/v1/knowledge/qa", json=RETURNS).status_code == 202
    await run_jobs(database, settings)
    with live_server.client() as http:
        yield Widget(
            http,
            api,
            created.json()["widget_key"],
            created.json()["id"],
            live_server,
            database,
            settings,
        )
    api.close()


def _frames(socket: ClientConnection, until: Any, seconds: float = 10) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while not until(frames):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no such frame in time: {frames}"
        try:
            frames.append(json.loads(socket.recv(timeout=remaining)))
        except TimeoutError:
            continue
    return frames


def _messages(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f["message"] for f in frames if f["type"] == "message"]


async def test_a_session_is_only_for_the_allowed_sites(widget: Widget) -> None:
    started = widget.start()
    assert started["visitor_token"].startswith("v1.")
    assert started["config"]["name"] == "Mia"
    assert started["config"]["greeting"] == "Hi, I'm Mia."
    assert "AI assistant" in started["config"]["ai_disclosure"]
    assert started["messages"] == []

    refused = widget.session(origin="https://evil.example")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This site may not use this chat widget."
    assert "access-control-allow-origin" not in refused.headers  # not for that site to read
    no_origin = widget.http.post("/widget/v1/session", json={"widget_key": widget.key})
    assert no_origin.status_code == 403
    unknown = widget.http.post(
        "/widget/v1/session", json={"widget_key": "wk_nope"}, headers={"Origin": SHOP}
    )
    assert unknown.status_code == 404

    response = widget.session()
    assert response.headers["access-control-allow-origin"] == SHOP
    preflight = widget.http.options(
        "/widget/v1/messages",
        headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert "authorization" in preflight.headers["access-control-allow-headers"]


async def test_a_question_is_answered_with_its_source_over_the_socket(widget: Widget) -> None:
    token = widget.start()["visitor_token"]
    with widget.socket(token) as socket:
        sent = widget.say(token, "What is your return policy?")
        assert sent.status_code == 202, sent.text
        mine = sent.json()["message"]
        assert (mine["sender"], mine["text"]) == ("customer", "What is your return policy?")
        await widget.work()
        frames = _frames(socket, lambda fs: any(m["sender"] == "assistant" for m in _messages(fs)))
    messages = _messages(frames)
    assert [m["sender"] for m in messages] == ["customer", "assistant"]
    answer = messages[1]
    assert RETURNS["answer"] in answer["text"]
    assert answer["text"].startswith("You're chatting with an AI assistant")
    assert answer["sources"] == [{"title": RETURNS["question"], "url": None}]
    assert "Source:" not in answer["text"]  # listed under the answer, not inside it
    assert {"type": "typing", "on": True} in frames


async def test_a_reconnecting_socket_resumes_without_loss_or_duplicates(widget: Widget) -> None:
    token = widget.start()["visitor_token"]
    widget.say(token, "What is your return policy?")
    await widget.work()
    with widget.socket(token) as socket:
        backlog = _messages(_frames(socket, lambda fs: len(_messages(fs)) == 2))
    cursor = backlog[-1]["id"]

    widget.say(token, "Thanks! And do you ship abroad?")  # while disconnected
    await widget.work()
    with widget.socket(token, after=cursor) as socket:
        resumed = _messages(_frames(socket, lambda fs: len(_messages(fs)) == 2))
    assert [m["sender"] for m in resumed] == ["customer", "assistant"]
    assert not {m["id"] for m in resumed} & {m["id"] for m in backlog}

    # A reload: the session brings the whole history back.
    again = widget.session(token=token).json()
    assert again["visitor_token"] == token
    assert [m["id"] for m in again["messages"]] == [m["id"] for m in backlog + resumed]


async def test_long_polling_delivers_when_sockets_are_blocked(widget: Widget) -> None:
    token = widget.start()["visitor_token"]
    first = widget.say(token, "What is your return policy?").json()["message"]
    polled = widget.poll(token)
    assert [e["message"]["id"] for e in polled["events"] if e["type"] == "message"] == [first["id"]]

    senders: list[str] = []

    def wait() -> None:  # each poll is held open until something happens
        cursor = polled["cursor"]
        deadline = time.monotonic() + 30
        while "assistant" not in senders and time.monotonic() < deadline:
            result = widget.poll(token, after=cursor)
            senders.extend(
                e["message"]["sender"] for e in result["events"] if e["type"] == "message"
            )
            cursor = result["cursor"]

    waiter = threading.Thread(target=wait)
    waiter.start()
    hub = widget.server.app.state.hub  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while not hub.subscribers:  # the poll is held open, waiting, when the reply commits
        assert time.monotonic() < deadline, "the poll was never held open"
        await asyncio.sleep(0.01)
    await widget.work()
    waiter.join(timeout=40)
    assert senders == ["assistant"]


async def test_a_visitor_token_reaches_only_its_own_conversation(widget: Widget) -> None:
    ada = widget.start()["visitor_token"]
    grace = widget.start()["visitor_token"]
    widget.say(ada, "My order number is 4711, what is your return policy?")
    assert widget.poll(grace)["events"] == []
    with widget.socket(grace) as socket:
        widget.say(grace, "hello")
        frames = _frames(socket, lambda fs: len(_messages(fs)) >= 1)
    assert "4711" not in json.dumps(frames)

    forged = ada.rsplit(".", 1)[0] + "." + "0" * 40
    assert widget.say(forged, "hi").status_code == 401
    assert widget.say("v1.garbage", "hi").status_code == 401
    with pytest.raises(Exception):  # noqa: B017,PT011 (refused before the handshake)
        widget.socket(forged)
    with pytest.raises(Exception):  # noqa: B017,PT011
        widget.socket(ada, origin="https://evil.example")
    assert widget.say(ada, "hi", origin="https://evil.example").status_code == 403

    # Rotating nothing else: another assistant's widget key cannot adopt the token.
    other = widget.api.post("/api/v1/assistants", json={"name": "Other", "allowed_origins": [SHOP]})
    response = widget.http.post(
        "/widget/v1/session",
        json={"widget_key": other.json()["widget_key"], "visitor_token": ada},
        headers={"Origin": SHOP},
    )
    assert response.json()["visitor_token"] != ada
    assert response.json()["messages"] == []


async def test_limits_keep_the_public_endpoint_cheap(widget: Widget) -> None:
    token = widget.start()["visitor_token"]
    too_long = widget.say(token, "x" * 2001)
    assert too_long.status_code == 422
    assert too_long.headers["access-control-allow-origin"] == SHOP

    client_id = uuid.uuid4().hex
    first = widget.say(token, "once", client_id=client_id).json()["message"]
    again = widget.say(token, "once", client_id=client_id).json()["message"]
    assert first["id"] == again["id"]  # a retried send is stored once

    statuses = [widget.say(token, f"message {n}").status_code for n in range(25)]
    assert 429 in statuses
    limited = widget.say(token, "one more")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "too quickly" in limited.json()["detail"]


async def test_asking_for_a_person_hands_off_and_the_widget_is_told(widget: Widget) -> None:
    token = widget.start()["visitor_token"]
    widget.say(token, "What is your return policy?")
    await widget.work()
    with widget.socket(token) as socket:
        _frames(socket, lambda fs: len(_messages(fs)) == 2)
        asked = widget.http.post(
            "/widget/v1/handoff", headers={"Origin": SHOP, "Authorization": f"Bearer {token}"}
        )
        assert asked.status_code == 202
        await widget.work()
        frames = _frames(socket, lambda fs: {"type": "state", "state": "waiting_for_human"} in fs)
    assert any("person from our team" in m["text"] for m in _messages(frames))
    conversations = widget.api.get("/api/v1/conversations", params={"channel": "webchat"})
    assert conversations.json()["items"][0]["state"] == "waiting_for_human"


async def test_handing_back_tells_the_visitor_and_answers_what_waited(widget: Widget) -> None:
    token = widget.start()["visitor_token"]
    asked = widget.http.post(
        "/widget/v1/handoff", headers={"Origin": SHOP, "Authorization": f"Bearer {token}"}
    )
    assert asked.status_code == 202
    await widget.work()
    # Written while the conversation waits for a person: nobody answers it yet.
    widget.say(token, RETURNS["question"])
    await widget.work()
    [listed] = widget.api.get("/api/v1/conversations").json()["items"]
    async with widget.database.transaction() as session:
        conversation = await session.get(Conversation, uuid.UUID(listed["id"]))
        assert conversation is not None
        organisation_id = conversation.organisation_id
    polled = widget.poll(token)
    seen = [e["message"] for e in polled["events"] if e["type"] == "message"]
    assert seen[-1]["sender"] == "customer"

    async with widget.database.transaction() as session:
        owner = (
            await session.execute(
                select(Membership).where(Membership.organisation_id == organisation_id)
            )
        ).scalar_one()
        await inbox.hand_back(
            TenantScope(session, organisation_id),
            Principal(organisation_id, Role.OWNER, user_id=owner.user_id),
            conversation.id,
        )
    await widget.work()

    after = [
        e["message"]
        for e in widget.poll(token, after=polled["cursor"])["events"]
        if e["type"] == "message"
    ]
    # The assistant is back, and says again that it is automated (policy §7).
    back = assistant_back_notice(DEFAULT_AI_DISCLOSURE)
    assert [(m["sender"], m["text"]) for m in after][:1] == [("system", back)]
    assert after[-1]["sender"] == "assistant"
    assert RETURNS["answer"] in after[-1]["text"]


# --- Hostile input from anywhere: a clear answer, never a 500 -------------------------


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("https://x:99999", None),
        ("http://[::1", None),
        ("127.0.0.1:abc", None),
        (SHOP, "127.0.0.1:abc"),
        (SHOP, "[::1"),
        (SHOP, "x:99999"),
    ],
)
async def test_malformed_origin_and_host_headers_are_no_origin(
    widget: Widget, origin: str, host: str | None
) -> None:
    token = widget.start()["visitor_token"]
    headers = {"Origin": origin, "Authorization": f"Bearer {token}"}
    if host is not None:
        headers["Host"] = host
    answers = [
        widget.http.post("/widget/v1/session", json={"widget_key": widget.key}, headers=headers),
        widget.http.post(
            "/widget/v1/messages", json={"text": "hi", "client_id": "c" * 10}, headers=headers
        ),
        widget.http.post("/widget/v1/handoff", headers=headers),
        widget.http.options("/widget/v1/messages", headers=headers),
    ]
    statuses = [a.status_code for a in answers]
    assert all(s < 500 for s in statuses), statuses  # was: 500 (ValueError from urllib)
    if origin != SHOP:
        assert statuses[:3] == [403, 403, 403]


async def test_a_message_with_nothing_to_read_is_refused_clearly(widget: Widget) -> None:
    token = widget.start()["visitor_token"]
    for blank in ("   ", "\n\t", "\u200b\ufeff "):
        response = widget.say(token, blank)
        assert response.status_code == 422, blank
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["access-control-allow-origin"] == SHOP  # the widget reads it
        assert response.json()["field"] == "text"
        assert response.json()["detail"] == "Write a message first."
    assert widget.api.get("/api/v1/conversations").json()["items"] == []


async def test_a_nul_character_in_a_message_is_refused(widget: Widget) -> None:
    token = widget.start()["visitor_token"]
    response = widget.say(token, "hello\u0000")
    assert response.status_code == 422  # was: 500 from PostgreSQL
    assert response.json()["field"] == "text"


async def test_frames_that_are_not_json_objects_get_an_error_frame(widget: Widget) -> None:
    token = widget.start()["visitor_token"]
    with widget.socket(token) as socket:
        for frame in ("[1]", "null", "not json", '"ping"', "[" * 1000, "{}" * 1000, b"\x00\x01"):
            socket.send(frame)
            [answer] = _frames(socket, lambda fs: any(f["type"] == "error" for f in fs))
            assert "JSON objects" in answer["detail"]
        socket.send('{"type": "ping"}')  # still open, still answering (was: closed)
        assert _frames(socket, lambda fs: {"type": "pong"} in fs)


async def test_only_listed_origins_may_read_preflights_and_errors(widget: Widget) -> None:
    def preflight(origin: str) -> httpx.Response:
        return widget.http.options(
            "/widget/v1/session",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )

    assert preflight(SHOP).headers["access-control-allow-origin"] == SHOP
    foreign = preflight("https://evil.example")
    assert foreign.status_code == 204
    assert "access-control-allow-origin" not in foreign.headers  # was: echoed

    # An ended session names no assistant: its 401 is readable by listed sites only.
    ended = {"Authorization": "Bearer v1.nope"}
    shop = widget.http.post("/widget/v1/handoff", headers={**ended, "Origin": SHOP})
    evil = widget.http.post(
        "/widget/v1/handoff", headers={**ended, "Origin": "https://evil.example"}
    )
    assert (shop.status_code, evil.status_code) == (401, 401)
    assert shop.headers["access-control-allow-origin"] == SHOP
    assert "access-control-allow-origin" not in evil.headers  # was: echoed


async def test_another_site_cannot_use_up_the_shops_sessions(widget: Widget) -> None:
    for _ in range(40):  # past the limit of 30 a minute per address
        assert widget.session(origin="https://evil.example").status_code == 403
    assert widget.session().status_code == 200  # was: 429


async def test_origins_too_long_to_be_listed_are_not_remembered(widget: Widget) -> None:
    widget.http.options("/widget/v1/session", headers={"Origin": "https://evil.example"})
    for n in range(20):
        origin = f"https://{'a' * 4000}{n}.example"
        answer = widget.http.options("/widget/v1/session", headers={"Origin": origin})
        assert answer.status_code == 204
        assert "access-control-allow-origin" not in answer.headers
    remembered = widget.server.server.config.app.state.widget_listed_origins
    assert len(remembered) == 1  # https://evil.example: not listed
