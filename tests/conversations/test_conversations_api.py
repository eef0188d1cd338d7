"""Conversations through their read API: newest activity first with stable cursors,
filters, messages oldest first, attachment downloads that cannot be rendered as pages,
and another organisation's conversations as invisible as missing ones."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cybergine.accounts.models import Role
from cybergine.conversations.models import (
    AttachmentStatus,
    Channel,
    Conversation,
    ConversationState,
    Direction,
    MessageStatus,
    Sender,
)
from cybergine.db.engine import Database
from tests.support.conversations import (
    make_attachment,
    make_conversation,
    make_customer,
    make_message,
    make_whatsapp_number,
)
from tests.support.factories import make_api_key, make_organisation_with_key
from tests.support.server import LiveServer

BASE = "/api/v1/conversations"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class Org:
    id: uuid.UUID
    api: httpx.Client


@pytest.fixture
async def org(live_server: LiveServer, database: Database) -> AsyncIterator[Org]:
    organisation, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as client:
        yield Org(organisation.id, client)


def _get(api: httpx.Client, url: str, **params: Any) -> dict[str, Any]:
    response = api.get(url, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _walk(api: httpx.Client, url: str, **params: Any) -> tuple[list[str], int]:
    """Every item id, following next_cursor; and the number of pages."""
    ids: list[str] = []
    pages = 0
    cursor = params.pop("cursor", None)
    while True:
        page = _get(api, url, **params, **({"cursor": cursor} if cursor else {}))
        pages += 1
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, pages
        assert pages < 100


def _ids(conversations: list[Conversation]) -> list[str]:
    return [str(c.id) for c in conversations]


async def test_a_conversation_as_the_api_shows_it(org: Org, database: Database) -> None:
    assistant = org.api.post("/api/v1/assistants", json={"name": "Mia"}).json()["id"]
    async with database.transaction() as session:
        number = await make_whatsapp_number(session, org.id, uuid.UUID(assistant))
        customer = await make_customer(
            session,
            org.id,
            external_id="447700900123",
            display_name="Ada Lovelace",
            opted_in_at=at(0),
            opt_in_source="customer_message",
            opted_out_at=at(30),
            opt_out_source="keyword:STOP",
        )
        conversation = await make_conversation(
            session,
            org.id,
            customer=customer,
            assistant_id=uuid.UUID(assistant),
            whatsapp_number_id=number.id,
            state=ConversationState.WAITING_FOR_HUMAN,
            human_review_requested=True,
            handoff_reason="Asked for a person",
            handoff_at=at(20),
            last_inbound_at=at(19),
            last_message_at=at(21),
            unread_count=3,
        )

    listed = _get(org.api, BASE)
    assert listed["next_cursor"] is None
    (item,) = listed["items"]
    assert item == _get(org.api, f"{BASE}/{conversation.id}")
    assert item["id"] == str(conversation.id)
    assert item["channel"] == "whatsapp"
    assert item["state"] == "waiting_for_human"
    assert item["assistant_id"] == assistant
    assert item["whatsapp_number_id"] == str(number.id)
    assert item["assigned_user_id"] is None
    assert item["human_review_requested"] is True
    assert item["handoff_reason"] == "Asked for a person"
    assert datetime.fromisoformat(item["handoff_at"]) == at(20)
    assert datetime.fromisoformat(item["last_inbound_at"]) == at(19)
    assert datetime.fromisoformat(item["last_message_at"]) == at(21)
    assert item["unread_count"] == 3
    assert item["closed_at"] is None
    assert item["created_at"]
    assert item["customer"] == {
        "id": str(customer.id),
        "channel": "whatsapp",
        "display_name": "Ada Lovelace",
        "phone_number": "+447700900123",
        "opted_out": True,
        "opted_in_at": item["customer"]["opted_in_at"],
        "opted_out_at": item["customer"]["opted_out_at"],
        "opt_in_source": "customer_message",
        "opt_out_source": "keyword:STOP",
        "erased": False,
    }
    assert datetime.fromisoformat(item["customer"]["opted_in_at"]) == at(0)
    assert datetime.fromisoformat(item["customer"]["opted_out_at"]) == at(30)
    # Internals stay inside.
    for hidden in ("organisation_id", "ai_disclosed_at", "external_id"):
        assert hidden not in item
        assert hidden not in item["customer"]


async def test_pages_walk_every_conversation_once_newest_first(
    org: Org, database: Database
) -> None:
    async with database.transaction() as session:
        # Ties on last_message_at and never-active conversations (NULL, shown last).
        times = [at(5), at(1), None, at(5), at(9), None, at(1), at(5), at(3), None, at(7)]
        conversations = [await make_conversation(session, org.id, last_message_at=t) for t in times]
    expected = sorted(
        conversations,
        key=lambda c: (c.last_message_at is not None, c.last_message_at or T0, c.id),
        reverse=True,
    )

    everything = _get(org.api, BASE)
    assert [i["id"] for i in everything["items"]] == _ids(expected)
    assert everything["next_cursor"] is None

    for limit in (1, 2, 3, 4, 10, 11):
        ids, pages = _walk(org.api, BASE, limit=limit)
        assert ids == _ids(expected), limit
        assert pages == -(-len(expected) // limit)
    # A page that ends exactly at the end says so.
    first = _get(org.api, BASE, limit=11)
    assert first["next_cursor"] is None

    # A conversation that becomes active after the first page was read does not make the
    # walk repeat or skip the others.
    page = _get(org.api, BASE, limit=4)
    async with database.transaction() as session:
        newest = await make_conversation(session, org.id, last_message_at=at(60))
    rest, _ = _walk(org.api, BASE, limit=4, cursor=page["next_cursor"])
    assert [i["id"] for i in page["items"]] + rest == _ids(expected)
    assert _get(org.api, BASE, limit=1)["items"][0]["id"] == str(newest.id)


async def test_filters(org: Org, database: Database) -> None:
    mia = uuid.UUID(org.api.post("/api/v1/assistants", json={"name": "Mia"}).json()["id"])
    alex = uuid.UUID(org.api.post("/api/v1/assistants", json={"name": "Alex"}).json()["id"])
    async with database.transaction() as session:
        bot = await make_conversation(session, org.id, assistant_id=mia, last_message_at=at(1))
        waiting = await make_conversation(
            session,
            org.id,
            assistant_id=mia,
            state=ConversationState.WAITING_FOR_HUMAN,
            human_review_requested=True,
            last_message_at=at(2),
        )
        human = await make_conversation(
            session, org.id, assistant_id=alex, state=ConversationState.HUMAN, last_message_at=at(3)
        )
        closed = await make_conversation(
            session,
            org.id,
            state=ConversationState.CLOSED,
            closed_at=at(5),
            human_review_requested=True,
            last_message_at=at(4),
        )
        webchat = await make_conversation(
            session, org.id, channel=Channel.WEBCHAT, assistant_id=alex, last_message_at=at(5)
        )

    def ids(**params: Any) -> list[str]:
        return [i["id"] for i in _get(org.api, BASE, **params)["items"]]

    assert ids() == _ids([webchat, closed, human, waiting, bot])
    assert ids(state="bot") == _ids([webchat, bot])
    assert ids(state="waiting_for_human") == _ids([waiting])
    assert ids(state="closed") == _ids([closed])
    assert ids(channel="webchat") == _ids([webchat])
    assert ids(channel="whatsapp") == _ids([closed, human, waiting, bot])
    assert ids(assistant_id=str(alex)) == _ids([webchat, human])
    assert ids(assistant_id=str(uuid.uuid4())) == []
    assert ids(human_review="true") == _ids([closed, waiting])
    assert ids(human_review="false") == _ids([webchat, human, bot])
    assert ids(state="bot", channel="whatsapp", assistant_id=str(mia)) == _ids([bot])
    walked, pages = _walk(org.api, BASE, channel="whatsapp", limit=1)
    assert walked == _ids([closed, human, waiting, bot])
    assert pages == 4
    customer = _get(org.api, BASE, channel="webchat")["items"][0]["customer"]
    assert customer["channel"] == "webchat"
    assert customer["phone_number"] is None

    for params, field in [
        ({"state": "asleep"}, "state"),
        ({"channel": "fax"}, "channel"),
        ({"assistant_id": "mia"}, "assistant_id"),
        ({"human_review": "perhaps"}, "human_review"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
    ]:
        refused = org.api.get(BASE, params=params)
        assert refused.status_code == 422, params
        assert refused.headers["content-type"] == "application/problem+json"
        assert any(field in e["location"] for e in refused.json()["errors"]), refused.text
    assert len(_get(org.api, BASE, limit=200)["items"]) == 5


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "%%%",
        _b64(b"hello"),
        # The format before cybergine.pagination (no version): refused, not misread.
        _b64(b'["2026-03-01T09:00:00+00:00", "0190c0de-0000-7000-8000-000000000000"]'),
        _b64(b'[2, "2026-03-01T09:00:00+00:00", "0190c0de-0000-7000-8000-000000000000"]'),
        _b64(b'["2026-03-01T09:00:00+00:00"]'),
        _b64(b'["2026-03-01T09:00:00+00:00", "not-a-uuid"]'),
        _b64(b'["yesterday", "0190c0de-0000-7000-8000-000000000000"]'),
        _b64(b'["2026-03-01T09:00:00", "0190c0de-0000-7000-8000-000000000000"]'),  # naive
        _b64(b'[42, "0190c0de-0000-7000-8000-000000000000"]'),
        _b64(b'{"at": null}'),
        _b64(b"[null, 5]"),
        _b64(b'"ab"'),
        _b64('["\u00e9"]'.encode("latin-1")),
        "x" * 501,
    ],
)
async def test_a_malformed_cursor_is_a_problem(org: Org, database: Database, cursor: str) -> None:
    async with database.transaction() as session:
        conversation = await make_conversation(session, org.id, last_message_at=at(1))
    for url in (BASE, f"{BASE}/{conversation.id}/messages"):
        refused = org.api.get(url, params={"cursor": cursor})
        assert refused.status_code == 422, (url, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem.get("field") == "cursor" or any(
            "cursor" in e["location"] for e in problem.get("errors", [])
        ), refused.text


async def test_messages_oldest_first_with_their_details(org: Org, database: Database) -> None:
    async with database.transaction() as session:
        conversation = await make_conversation(session, org.id, last_message_at=at(10))
        question = await make_message(
            session,
            conversation,
            text="Do you ship to Lisbon?",
            external_id="wamid.INBOUND1",
            sent_at=at(1),
            created_at=at(1),
        )
        answer = await make_message(
            session,
            conversation,
            direction=Direction.OUTBOUND,
            text="Yes, in three days [1].",
            reply_to_id=question.id,
            sources=[{"number": 1, "title": "Shipping", "item_id": "x", "score": 0.9}],
            grounded=True,
            llm_provider="openai",
            llm_model="gpt-4o-mini",
            prompt_tokens=321,
            completion_tokens=12,
            status=MessageStatus.READ,
            sent_at=at(2),
            delivered_at=at(2.5),
            read_at=at(3),
            created_at=at(2),
        )
        failed = await make_message(
            session,
            conversation,
            direction=Direction.OUTBOUND,
            sender=Sender.AGENT,
            text="Here is your invoice.",
            status=MessageStatus.FAILED,
            error_code=131047,
            error_title="Re-engagement message",
            error_detail="More than 24 hours have passed.",
            failed_at=at(4),
            created_at=at(4),
        )
        photo = await make_message(
            session,
            conversation,
            type="image",
            text=None,
            payload={"image": {"id": "media-1", "caption": None}},
            created_at=at(5),
        )
        attachment = await make_attachment(
            session, photo, data=b"\x89PNG secret pixels", filename="photo.png"
        )

    page = _get(org.api, f"{BASE}/{conversation.id}/messages")
    assert page["next_cursor"] is None
    items = page["items"]
    assert [m["id"] for m in items] == [str(m.id) for m in (question, answer, failed, photo)]
    first, second, third, fourth = items
    assert first["direction"] == "inbound"
    assert first["sender"] == "customer"
    assert first["status"] == "received"
    assert first["type"] == "text"
    assert first["text"] == "Do you ship to Lisbon?"
    assert first["external_id"] == "wamid.INBOUND1"
    assert first["error"] is None
    assert first["attachment"] is None
    assert second["sender"] == "assistant"
    assert second["status"] == "read"
    assert second["reply_to_id"] == str(question.id)
    assert second["sources"] == [{"number": 1, "title": "Shipping", "item_id": "x", "score": 0.9}]
    assert second["grounded"] is True
    assert (second["llm_provider"], second["llm_model"]) == ("openai", "gpt-4o-mini")
    assert (second["prompt_tokens"], second["completion_tokens"]) == (321, 12)
    assert datetime.fromisoformat(second["delivered_at"]) == at(2.5)
    assert datetime.fromisoformat(second["read_at"]) == at(3)
    assert datetime.fromisoformat(second["created_at"]) == at(2)
    assert third["sender"] == "agent"
    assert third["error"] == {
        "code": 131047,
        "title": "Re-engagement message",
        "detail": "More than 24 hours have passed.",
    }
    assert datetime.fromisoformat(third["failed_at"]) == at(4)
    assert fourth["type"] == "image"
    assert fourth["payload"] == {"image": {"id": "media-1", "caption": None}}
    assert fourth["attachment"] == {
        "id": str(attachment.id),
        "status": "stored",
        "mime_type": "image/png",
        "filename": "photo.png",
        "size_bytes": len(b"\x89PNG secret pixels"),
        "sha256": attachment.sha256,
        "error": None,
    }
    raw = org.api.get(f"{BASE}/{conversation.id}/messages").text
    assert "secret pixels" not in raw
    assert base64.b64encode(b"\x89PNG secret pixels").decode() not in raw
    for hidden in ("organisation_id", "send_attempts", "context_external_id", "data"):
        assert hidden not in fourth


async def test_message_pages_walk_every_message_once(org: Org, database: Database) -> None:
    async with database.transaction() as session:
        conversation = await make_conversation(session, org.id)
        other = await make_conversation(session, org.id)
        # Several share a created_at (one transaction's now()): the id breaks the tie.
        messages = [
            await make_message(session, conversation, text=f"m{i}", created_at=at(i // 3))
            for i in range(10)
        ]
        await make_message(session, other, text="elsewhere", created_at=at(1))
    expected = [str(m.id) for m in sorted(messages, key=lambda m: (m.created_at, m.id))]
    url = f"{BASE}/{conversation.id}/messages"
    assert [m["id"] for m in _get(org.api, url)["items"]] == expected
    for limit in (1, 3, 4, 9, 10):
        ids, pages = _walk(org.api, url, limit=limit)
        assert ids == expected, limit
        assert pages == -(-len(expected) // limit)
    for limit in (0, 201):
        assert org.api.get(url, params={"limit": limit}).status_code == 422
    # A cursor of a conversation list (NULL activity) is no message cursor.
    null_cursor = _b64(b'[1, null, "0190c0de-0000-7000-8000-000000000000"]')
    assert org.api.get(url, params={"cursor": null_cursor}).status_code == 422


async def test_attachment_downloads(org: Org, database: Database) -> None:
    async with database.transaction() as session:
        conversation = await make_conversation(session, org.id)
        files: dict[str, Any] = {}
        for name, data, mime_type, filename in [
            ("png", b"\x89PNG image bytes", "image/png", "photo.png"),
            ("ogg", b"OggS voice note", "audio/ogg; codecs=opus", None),
            ("pdf", b"%PDF-1.7 invoice", "application/pdf", "Factura março.pdf"),
            ("html", b"<script>alert(1)</script>", "text/html", "page.html"),
            ("svg", b"<svg onload=alert(1)/>", "image/svg+xml", "logo.svg"),
            ("odd", b"whatever", "not a type", 'evil"\r\nX-Injected: 1.txt'),
        ]:
            message = await make_message(session, conversation, type="document", text=None)
            await make_attachment(
                session, message, data=data, mime_type=mime_type, filename=filename
            )
            files[name] = (message.id, data)
        pending = await make_message(session, conversation, type="image", text=None)
        await make_attachment(session, pending, data=None)
        rejected = await make_message(session, conversation, type="video", text=None)
        await make_attachment(
            session,
            rejected,
            data=None,
            status=AttachmentStatus.REJECTED,
            error="Videos over 16 MB are not kept.",
        )
        plain = await make_message(session, conversation, text="no file")
        other = await make_conversation(session, org.id)

    def download(message_id: uuid.UUID, conversation_id: uuid.UUID = conversation.id) -> Any:
        return org.api.get(f"{BASE}/{conversation_id}/messages/{message_id}/attachment")

    png = download(files["png"][0])
    assert png.status_code == 200
    assert png.content == files["png"][1]
    assert png.headers["content-type"] == "image/png"
    assert png.headers["content-disposition"] == 'inline; filename="photo.png"'
    assert png.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in png.headers["cache-control"]

    ogg = download(files["ogg"][0])
    assert ogg.headers["content-type"] == "audio/ogg"
    assert ogg.headers["content-disposition"] == 'inline; filename="attachment"'

    pdf = download(files["pdf"][0])
    assert pdf.content == files["pdf"][1]
    assert pdf.headers["content-type"] == "application/octet-stream"
    assert pdf.headers["content-disposition"] == (
        "attachment; filename=\"Factura maro.pdf\"; filename*=UTF-8''Factura%20mar%C3%A7o.pdf"
    )
    assert pdf.headers["x-content-type-options"] == "nosniff"

    for name in ("html", "svg", "odd"):
        response = download(files[name][0])
        assert response.status_code == 200, name
        assert response.content == files[name][1]
        assert response.headers["content-type"] == "application/octet-stream", name
        assert response.headers["content-disposition"].startswith("attachment;"), name
        assert "x-injected" not in response.headers

    for message_id in (pending.id, rejected.id, plain.id, uuid.uuid4()):
        missing = download(message_id)
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
    # The message exists, but not in that conversation.
    assert download(files["png"][0], other.id).status_code == 404
    assert download(files["png"][0], uuid.uuid4()).status_code == 404

    listed = _get(org.api, f"{BASE}/{conversation.id}/messages")["items"]
    states = {m["id"]: m["attachment"] for m in listed}
    assert states[str(pending.id)]["status"] == "pending"
    assert states[str(rejected.id)]["status"] == "rejected"
    assert states[str(rejected.id)]["error"] == "Videos over 16 MB are not kept."
    assert states[str(plain.id)] is None


async def test_another_organisations_conversations_are_not_found(
    org: Org, database: Database, live_server: LiveServer
) -> None:
    async with database.transaction() as session:
        customer = await make_customer(session, org.id, display_name="Alpha Private Person")
        conversation = await make_conversation(
            session, org.id, customer=customer, last_message_at=at(1)
        )
        message = await make_message(session, conversation, text="Alpha private words")
        await make_attachment(session, message)
    elsewhere_org, key = await make_organisation_with_key(database, name="Elsewhere")
    async with database.transaction() as session:
        theirs = await make_conversation(session, elsewhere_org.id, last_message_at=at(2))

    urls = [
        f"{BASE}/{conversation.id}",
        f"{BASE}/{conversation.id}/messages",
        f"{BASE}/{conversation.id}/messages/{message.id}/attachment",
        # Their own conversation with our message id.
        f"{BASE}/{theirs.id}/messages/{message.id}/attachment",
    ]
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as elsewhere:
        missing = elsewhere.get(f"{BASE}/{uuid.uuid4()}")
        assert missing.status_code == 404
        for url in urls:
            response = elsewhere.get(url)
            assert response.status_code == 404, url
            assert "Alpha" not in response.text
        assert elsewhere.get(urls[0]).json()["detail"] == missing.json()["detail"]
        listed = elsewhere.get(BASE)
        assert [i["id"] for i in listed.json()["items"]] == [str(theirs.id)]
        assert "Alpha" not in listed.text
        assert elsewhere.get(f"{BASE}/{theirs.id}/messages").json()["items"] == []
    assert _get(org.api, f"{BASE}/{conversation.id}")["customer"]["display_name"] == (
        "Alpha Private Person"
    )


async def test_a_viewer_reads_conversations(
    org: Org, database: Database, live_server: LiveServer
) -> None:
    async with database.transaction() as session:
        conversation = await make_conversation(session, org.id)
        message = await make_message(session, conversation)
        await make_attachment(session, message)
    viewer_key = await make_api_key(database, org.id, Role.VIEWER)
    with live_server.client(headers={"authorization": f"Bearer {viewer_key}"}) as viewer:
        for url in (
            BASE,
            f"{BASE}/{conversation.id}",
            f"{BASE}/{conversation.id}/messages",
            f"{BASE}/{conversation.id}/messages/{message.id}/attachment",
        ):
            assert viewer.get(url).status_code == 200, url
    with live_server.client() as anonymous:
        assert anonymous.get(BASE).status_code == 401
