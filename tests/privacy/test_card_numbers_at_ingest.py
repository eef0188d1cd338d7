"""Card numbers a customer types are masked to their last four digits before anything
is stored (privacy policy §12), on every way in: a signed WhatsApp webhook stored by the
SQL hot path (plain text, button and list replies) and by the Python path (a caption
of media to fetch, consent words), the raw event row of each, the widget's API, and
every log line."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from cybergine.db.engine import Database
from cybergine.logging import configure_logging
from cybergine.settings import Settings
from tests.support.factories import make_organisation_with_key
from tests.support.server import LiveServer
from tests.support.whatsapp import Shop, fixture, readdress

CARD = "4242 4242 4242 4242"
OTHER_CARD = "6011-1111-1111-1117"
MASKED = "[card ending 4242]"
MASKED_OTHER = "[card ending 1117]"
# Every way the numbers could still be found: whole, or with their separators.
FORBIDDEN = ("4242424242424242", CARD, "4242-4242", "6011111111111117", OTHER_CARD)
# A customer whose WhatsApp id (a phone number) passes the Luhn check: it is no card.
LUHN_PHONE = "4915112345678"
SHOP_ORIGIN = "https://shop.example"


async def _stored(database: Database) -> str:
    """Every row that could hold what a customer wrote, as text."""
    async with database.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT row_to_json(m)::text FROM messages m "
                "UNION ALL SELECT row_to_json(e)::text FROM whatsapp_webhook_events e "
                "UNION ALL SELECT row_to_json(c)::text FROM customers c "
                "UNION ALL SELECT row_to_json(v)::text FROM conversations v "
                "UNION ALL SELECT args::text FROM procrastinate_jobs"
            )
        )
        return "\n".join(rows.scalars())


def _assert_no_card(stored: str) -> None:
    for forbidden in FORBIDDEN:
        assert forbidden not in stored, forbidden


async def _inbound(database: Database) -> list[dict[str, Any]]:
    async with database.transaction() as session:
        rows = await session.execute(
            text("SELECT type, text, payload FROM messages WHERE direction = 'inbound' ORDER BY id")
        )
        return [dict(row._mapping) for row in rows]


async def _event_values(database: Database) -> list[dict[str, Any]]:
    async with database.transaction() as session:
        rows = await session.execute(
            text("SELECT value FROM whatsapp_webhook_events WHERE messages > 0 ORDER BY id")
        )
        return list(rows.scalars())


def _from_customer(name: str, shop: Shop, wa_id: str, message_id: str) -> dict[str, Any]:
    """A real payload example, sent to the shop's number by ``wa_id``."""
    body = readdress(fixture(name), shop.phone_number_id)
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = wa_id
    message = value["messages"][0]
    message["from"] = wa_id
    message["id"] = message_id
    message.pop("context", None)
    return body


def _post(shop: Shop, body: dict[str, Any]) -> None:
    response = shop.post(body)
    assert response.status_code == 200, response.text


async def test_text_through_the_sql_path_keeps_only_the_last_four(shop: Shop) -> None:
    shop.says(f"Hi, my card is {CARD}, exp 12/27. Order 100023.")

    [message] = await _inbound(shop.database)
    assert message["text"] == f"Hi, my card is {MASKED}, exp 12/27. Order 100023."
    [event] = await _event_values(shop.database)
    assert event["messages"][0]["text"]["body"] == message["text"]
    [conversation] = shop.conversations()
    [shown] = shop.messages(conversation["id"])
    assert shown["text"] == message["text"]
    _assert_no_card(await _stored(shop.database))


async def test_button_and_list_titles_are_masked(shop: Shop) -> None:
    button = _from_customer("interactive_button_reply_01.json", shop, "15550002001", "wamid.b1")
    message = button["entry"][0]["changes"][0]["value"]["messages"][0]
    message["interactive"]["button_reply"]["title"] = f"Pay with {CARD}"
    listed = _from_customer("interactive_list_reply_01.json", shop, "15550002002", "wamid.l1")
    row = listed["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"]["list_reply"]
    row["title"] = "Saved card"
    row["description"] = f"ends {OTHER_CARD}"
    _post(shop, button)
    _post(shop, listed)

    by_text = {m["text"]: m for m in await _inbound(shop.database)}
    assert set(by_text) == {f"Pay with {MASKED}", f"Saved card\nends {MASKED_OTHER}"}
    stored_button = by_text[f"Pay with {MASKED}"]["payload"]["interactive"]["button_reply"]
    assert stored_button["title"] == f"Pay with {MASKED}"
    assert stored_button["id"] == message["interactive"]["button_reply"]["id"]  # ids are kept
    events = await _event_values(shop.database)
    assert len(events) == 2
    assert MASKED in json.dumps(events)
    assert MASKED_OTHER in json.dumps(events)
    _assert_no_card(await _stored(shop.database))


async def test_a_caption_of_media_through_the_python_path(shop: Shop) -> None:
    body = _from_customer("image_01.json", shop, "15550002003", "wamid.i1")
    image = body["entry"][0]["changes"][0]["value"]["messages"][0]["image"]
    image["caption"] = f"photo of my card {CARD}"
    _post(shop, body)

    [message] = await _inbound(shop.database)
    assert message["type"] == "image"
    assert message["text"] == f"photo of my card {MASKED}"
    assert message["payload"]["image"]["caption"] == message["text"]
    assert message["payload"]["image"]["id"] == image["id"]  # the media to fetch, intact
    [event] = await _event_values(shop.database)
    assert event["messages"][0]["image"]["caption"] == message["text"]
    assert event["messages"][0]["image"]["sha256"] == image["sha256"]
    _assert_no_card(await _stored(shop.database))


async def test_consent_words_through_the_python_path(shop: Shop) -> None:
    shop.says(f"STOP and forget my card {CARD}", wa_id="15550002004")

    [message] = await _inbound(shop.database)
    assert message["text"] == f"STOP and forget my card {MASKED}"
    _assert_no_card(await _stored(shop.database))


async def test_identifiers_that_pass_luhn_are_not_cards(shop: Shop) -> None:
    """A phone number (the customer's WhatsApp id) is kept whole, even one that passes
    the Luhn check; only what the customer wrote is masked."""
    shop.says(f"card {CARD}", wa_id=LUHN_PHONE)

    async with shop.database.transaction() as session:
        customer = (
            await session.execute(text("SELECT external_id, phone_number FROM customers"))
        ).one()
    assert tuple(customer) == (LUHN_PHONE, f"+{LUHN_PHONE}")
    [event] = await _event_values(shop.database)
    assert event["contacts"][0]["wa_id"] == LUHN_PHONE
    assert event["messages"][0]["from"] == LUHN_PHONE
    assert event["metadata"]["phone_number_id"] == shop.phone_number_id


@pytest.fixture
async def widget(
    live_server: LiveServer, database: Database
) -> AsyncIterator[tuple[httpx.Client, str]]:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        created = api.post(
            "/api/v1/assistants", json={"name": "Mia", "allowed_origins": [SHOP_ORIGIN]}
        )
        assert created.status_code == 201, created.text
        with live_server.client() as http:
            session = http.post(
                "/widget/v1/session",
                json={"widget_key": created.json()["widget_key"]},
                headers={"Origin": SHOP_ORIGIN},
            )
            assert session.status_code == 200, session.text
            yield http, session.json()["visitor_token"]


async def test_the_widget_api_stores_the_last_four(
    widget: tuple[httpx.Client, str], database: Database
) -> None:
    http, token = widget
    client_id = uuid.uuid4().hex
    sent = http.post(
        "/widget/v1/messages",
        json={"text": f"my card: {OTHER_CARD} thanks", "client_id": client_id},
        headers={"Origin": SHOP_ORIGIN, "Authorization": f"Bearer {token}"},
    )
    assert sent.status_code in (200, 201, 202), sent.text
    assert OTHER_CARD not in sent.text

    [message] = await _inbound(database)
    assert message["text"] == f"my card: {MASKED_OTHER} thanks"
    _assert_no_card(await _stored(database))


def test_log_lines_never_hold_a_card_number(
    live_server: LiveServer, capfd: pytest.CaptureFixture[str], settings: Settings
) -> None:
    configure_logging("INFO", "json")
    try:
        with live_server.client() as client:
            # The request log names the path, whatever a client put in it.
            client.get(f"/widget/v1/cards/{CARD.replace(' ', '')}/x", params={"q": CARD})
        try:
            raise ValueError(f"could not store {CARD!r}")
        except ValueError:
            logging.getLogger("cybergine.tests").exception("storing %s failed", OTHER_CARD)
        lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line]
    finally:
        configure_logging("WARNING", "console")
    request = next(line for line in lines if line.get("event") == "request")
    assert request["path"] == f"/widget/v1/cards/{MASKED}/x"
    failure = next(line for line in lines if line.get("logger") == "cybergine.tests")
    assert failure["event"] == f"storing {MASKED_OTHER} failed"
    assert f"could not store '{MASKED}'" in failure["exception"]
    _assert_no_card(json.dumps(lines))


def test_a_copy_of_the_body_is_left_as_it_was() -> None:
    """Masking builds new values: the body a caller holds (and signed) is unchanged."""
    from cybergine.channels.whatsapp.payloads import parse_webhook

    body = fixture("text_01.json")
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = CARD
    before = copy.deepcopy(body)
    [message] = parse_webhook(body).messages
    assert message.text == MASKED
    assert body == before
