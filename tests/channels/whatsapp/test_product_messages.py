"""Product cards on WhatsApp: the Graph API bodies of an answer with one, ten and more than
ten products (an interactive list within Meta's limits, the links that rows cannot carry,
one product as its image with a caption), the simulator accepting them and refusing what
Meta refuses, and a customer's tap on a row answered with that product's image and link,
within the 24-hour window only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from cybergine.channels.whatsapp import delivery
from cybergine.channels.whatsapp.graph import GraphClient, GraphError
from cybergine.channels.whatsapp.messages import (
    LIST_BODY_LIMIT,
    ROW_DESCRIPTION_LIMIT,
    ROW_TITLE_LIMIT,
    list_body,
    shorten,
)
from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.conversations.models import Conversation, Message, MessageStatus, Sender
from cybergine.conversations.product_cards import PRODUCT_CHOICE_PREFIX
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support import whatsapp as whatsapp_support
from tests.support.catalog import SHOES
from tests.support.product_cards import card, send_cards
from tests.support.server import LiveServer

CUSTOMER = "15550001111"
PHONE_ID = "106540352242922"
TOKEN = "EAAGtest-access-token-0123456789abcdef"


def bodies(
    text: str, cards: list[dict[str, Any]], *, language: str | None = None
) -> list[dict[str, Any]]:
    payload: dict[str, Any] = {"products": cards}
    if language is not None:
        payload["language"] = language
    return delivery.bodies_of(uuid.uuid4(), "interactive", text, payload, to=CUSTOMER)


def rows_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert body["type"] == "interactive"
    assert body["interactive"]["type"] == "list"
    [section] = body["interactive"]["action"]["sections"]
    rows: list[dict[str, Any]] = section["rows"]
    return rows


# --- the bodies -------------------------------------------------------------------------


def test_one_product_is_its_image_with_the_answer_and_link_as_caption() -> None:
    [image] = bodies("This one fits: Ridge Runner, 49.90 EUR.", [card()])

    assert image["type"] == "image"
    assert image["image"]["link"] == "https://shop.example/cdn/ridge-runner-0.png"
    assert image["image"]["caption"] == (
        "This one fits: Ridge Runner, 49.90 EUR.\nhttps://shop.example/products/ridge-runner-0"
    )


def test_one_product_without_an_image_is_a_text_with_its_link_previewed() -> None:
    [message] = bodies("This one fits.", [card(image_url=None)])

    assert message["type"] == "text"
    assert message["text"]["preview_url"] is True
    assert message["text"]["body"].endswith("https://shop.example/products/ridge-runner-0")


def test_ten_products_are_a_list_within_metas_limits_and_the_links_follow() -> None:
    cards = [card(n) for n in range(10)]
    cards[3] = card(3, title="An extraordinarily long waterproof trail running shoe")
    cards[4] = card(4, available=False, compare_at_price="69.90", variant="42 / Black")
    cards[5] = card(5, available="yes")  # not true: out of stock

    listed, links = bodies("Here are ten shoes.", cards)

    rows = rows_of(listed)
    assert len(rows) == 10
    assert listed["interactive"]["body"]["text"] == "Here are ten shoes."
    assert rows[0] == {
        "id": PRODUCT_CHOICE_PREFIX + cards[0]["id"],
        "title": "Ridge Runner shoe 0",
        "description": "49.90 EUR · in stock",
    }
    assert rows[3]["title"] == "An extraordinarily long…"
    assert rows[4]["description"] == "42 / Black · 49.90 EUR (was 69.90) · out of stock"
    assert rows[5]["description"] == "49.90 EUR · out of stock"
    for row in rows:
        assert len(row["id"]) <= 200
        assert len(row["title"]) <= ROW_TITLE_LIMIT
        assert len(row["description"]) <= ROW_DESCRIPTION_LIMIT
    # Rows carry no link: one text lists them, the first previewed.
    assert links["type"] == "text"
    assert links["text"]["preview_url"] is True
    assert links["text"]["body"].splitlines()[0] == (
        "Ridge Runner shoe 0: https://shop.example/products/ridge-runner-0"
    )
    assert len(links["text"]["body"].splitlines()) == 10


def test_the_words_around_the_cards_follow_the_answers_language() -> None:
    cards = [card(0, compare_at_price="59.90"), card(1, available=False)]

    [german, _] = bodies("Zwei Schuhe.", cards, language="de")
    [unknown, _] = bodies("Two shoes.", cards, language="xx")

    assert german["interactive"]["action"]["button"] == "Produkte ansehen"
    assert [row["description"] for row in rows_of(german)] == [
        "49.90 EUR (statt 59.90) · auf Lager",
        "49.90 EUR · nicht auf Lager",
    ]
    assert unknown["interactive"]["action"]["button"] == "See products"


def test_more_than_ten_products_show_the_first_ten() -> None:
    [listed, links] = bodies("Many shoes.", [card(n) for n in range(14)])

    assert [row["title"] for row in rows_of(listed)] == [
        f"Ridge Runner shoe {n}" for n in range(10)
    ]
    assert len(links["text"]["body"].splitlines()) == 10


def test_links_the_answer_already_holds_are_not_sent_again() -> None:
    cards = [card(0), card(1), card(2, url=None)]
    text = "\n".join(f"- {c['title']}: 49.90 EUR {c['url'] or ''}" for c in cards)

    assert [b["type"] for b in bodies(text, cards)] == ["interactive"]


def test_a_long_answer_goes_first_and_the_list_names_the_products() -> None:
    text = "A long answer. " * 400  # 6000 characters: more than a list's body holds
    sent = bodies(text, [card(0), card(1)])

    assert [b["type"] for b in sent] == ["text", "text", "interactive", "text"]
    assert sent[2]["interactive"]["body"]["text"] == ("Ridge Runner shoe 0\nRidge Runner shoe 1")
    assert len(text) > LIST_BODY_LIMIT


def test_hostile_and_odd_cards_are_shortened_or_left_out() -> None:
    cards = [
        card(0, title="<script>alert(1)</script>" * 3, url="javascript:alert(2)"),
        card(1, title="   "),  # no title: dropped
        card(2, image_url="data:image/png;base64,AAAA"),
        card(0),  # the same product twice: one row
    ]
    [listed, links] = bodies("Two shoes.", cards)

    rows = rows_of(listed)
    assert [row["id"][len(PRODUCT_CHOICE_PREFIX) :] for row in rows] == [
        card(0)["id"],
        card(2)["id"],
    ]
    assert len(rows[0]["title"]) <= ROW_TITLE_LIMIT
    assert "javascript:" not in links["text"]["body"]


def test_shorten_cuts_between_words_and_keeps_emoji_whole() -> None:
    assert shorten("Trail shoe", 24) == "Trail shoe"
    assert shorten("Waterproof trail running shoe", 24) == "Waterproof trail…"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    cut = shorten("x" * 20 + family + "tail", 24)
    assert cut == "x" * 20 + "\u2026"  # the family is never split at its joiners


# --- the simulator --------------------------------------------------------------------


@pytest.fixture
def simulator() -> Iterator[GraphSimulator]:
    with GraphSimulator() as sim:
        sim.add_number(PHONE_ID, TOKEN)
        yield sim


@pytest.fixture
async def client(simulator: GraphSimulator) -> AsyncIterator[GraphClient]:
    async with GraphClient(base_url=simulator.base_url, timeout=5) as graph:
        yield graph


async def test_the_simulator_accepts_what_is_built(
    client: GraphClient, simulator: GraphSimulator
) -> None:
    sent = [
        *bodies("Ten shoes.", [card(n, variant="42 / Black") for n in range(12)]),
        *bodies("One shoe.", [card(0, compare_at_price="59.90")]),
    ]
    for body in sent:
        await client.send(PHONE_ID, TOKEN, body)

    assert [m.type for m in simulator.sent] == ["interactive", "text", "image"]


async def test_the_simulator_refuses_what_meta_refuses(
    client: GraphClient, simulator: GraphSimulator
) -> None:
    valid = list_body(CUSTOMER, "Pick one", "See products", [("", [("a", "Shoe", "49.90 EUR")])])

    def changed(**row: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            **valid,
            "interactive": {
                **valid["interactive"],
                "action": {"button": "See products", "sections": [{"rows": [row]}]},
            },
        }
        return body

    too_many = changed(id="a", title="Shoe")
    too_many["interactive"]["action"]["sections"][0]["rows"] = [
        {"id": str(n), "title": "Shoe"} for n in range(11)
    ]
    image = bodies("One shoe.", [card()])[0]
    cases = {
        "title": (changed(id="a", title="x" * 25), 131009),
        "description": (changed(id="a", title="Shoe", description="d" * 73), 131009),
        "id": (changed(id="i" * 201, title="Shoe"), 131009),
        "no title": (changed(id="a"), 131008),
        "rows": (too_many, 131009),
        "link": ({**image, "image": {"link": "javascript:alert(1)"}}, 131009),
    }
    for what, (body, code) in cases.items():
        with pytest.raises(GraphError) as caught:
            await client.send(PHONE_ID, TOKEN, body)
        assert (caught.value.code, caught.value.retryable) == (code, False), what
    assert simulator.sent == []


# --- a tap on a row, end to end -------------------------------------------------------


async def _send_cards(shop: whatsapp_support.Shop, cards: list[dict[str, Any]]) -> uuid.UUID:
    return await send_cards(shop.database, shop.organisation_id, cards)


def _tap(shop: whatsapp_support.Shop, row: dict[str, Any], list_wamid: str) -> None:
    body = shop.graph.inbound_webhook(shop.phone_number_id, CUSTOMER, "unused", name="Ada")
    [message] = body["entry"][0]["changes"][0]["value"]["messages"]
    del message["text"]
    message["type"] = "interactive"
    message["interactive"] = {"type": "list_reply", "list_reply": row}
    message["context"] = {"from": shop.phone_number_id, "id": list_wamid}
    response = shop.post(body)
    assert response.status_code == 200, response.text


def _in_catalogue(shop: whatsapp_support.Shop, key: str, **changes: Any) -> str:
    """A product of ``SHOES`` written through the catalogue's API; returns its id."""
    data = {**SHOES[key], "url": f"https://shop.example/products/{key}", **changes}
    created = shop.api.post("/api/v1/catalog/products", json=data)
    assert created.status_code == 201, created.text
    product_id: str = created.json()["id"]
    return product_id


async def _offer(shop: whatsapp_support.Shop) -> tuple[list[dict[str, Any]], Any]:
    """Two catalogue products offered as cards in a list; returns the cards and the list."""
    fit = _in_catalogue(shop, "fit")
    road = _in_catalogue(shop, "road")
    shop.says("Hello", wa_id=CUSTOMER)
    await shop.work()
    cards = [
        card(0, id=road, title="City Road Runner", url="https://shop.example/products/road"),
        card(
            1,
            id=fit,
            title="Waterproof Trail Running Shoe",
            price="89.90",
            compare_at_price="99.90",
            variant="42 / Black",
            url="https://shop.example/products/fit",
        ),
    ]
    await _send_cards(shop, cards)
    await shop.work()
    listed = [m for m in shop.graph.sent if m.type == "interactive"][-1]
    return cards, listed


def _tap_row(shop: whatsapp_support.Shop, listed: Any, n: int) -> None:
    row = rows_of(dict(listed.body))[n]
    _tap(shop, {"id": row["id"], "title": row["title"]}, listed.wamid)


async def test_a_tapped_row_is_answered_with_the_products_image_and_link(
    shop: whatsapp_support.Shop,
) -> None:
    cards, listed = await _offer(shop)

    _tap_row(shop, listed, 1)
    await shop.work()

    answer = shop.graph.sent[-1]
    assert answer.type == "image"
    assert answer.body["image"]["link"] == "https://shop.example/cdn/ridge-runner-1.png"
    assert answer.body["image"]["caption"] == (
        "- Waterproof Trail Running Shoe (42 / Black): 89.90 EUR (was 99.90), in stock"
        " https://shop.example/products/fit"
    )
    async with shop.database.transaction() as session:
        stored = (
            (
                await session.execute(
                    select(Message).where(Message.sender == Sender.ASSISTANT).order_by(Message.id)
                )
            )
            .scalars()
            .all()
        )
    assert stored[-1].payload is not None
    assert [c["id"] for c in stored[-1].payload["products"]] == [cards[1]["id"]]
    assert stored[-1].status in (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)


async def test_a_product_sold_out_since_the_list_is_not_offered_as_in_stock(
    shop: whatsapp_support.Shop,
) -> None:
    cards, listed = await _offer(shop)
    sold_out = {
        **SHOES["fit"],
        "variants": [{**v, "inventory_quantity": 0} for v in SHOES["fit"]["variants"]],
    }
    replaced = shop.api.put(f"/api/v1/catalog/products/{cards[1]['id']}", json=sold_out)
    assert replaced.status_code == 200, replaced.text

    _tap_row(shop, listed, 1)
    await shop.work()

    caption = shop.graph.sent[-1].body["image"]["caption"]
    assert caption.endswith("out of stock https://shop.example/products/fit")
    assert "in stock" not in caption.replace("out of stock", "")


async def test_a_product_unpublished_since_the_list_is_not_shown(
    shop: whatsapp_support.Shop,
) -> None:
    cards, listed = await _offer(shop)
    draft = {**SHOES["road"], "status": "draft"}
    replaced = shop.api.put(f"/api/v1/catalog/products/{cards[0]['id']}", json=draft)
    assert replaced.status_code == 200, replaced.text
    sent_before = len(shop.graph.sent)

    _tap_row(shop, listed, 0)
    await shop.work()

    assert len(shop.graph.sent) > sent_before  # answered, as ordinary text
    assert all(m.type != "image" for m in shop.graph.sent[sent_before:])
    assert all("City Road Runner" not in (m.text or "") for m in shop.graph.sent[sent_before:])


async def test_a_product_never_offered_is_not_answered_as_one(
    shop: whatsapp_support.Shop,
) -> None:
    shop.says("Hello", wa_id=CUSTOMER)
    await shop.work()
    sent_before = len(shop.graph.sent)
    forged = PRODUCT_CHOICE_PREFIX + str(uuid.uuid4())

    _tap(shop, {"id": forged, "title": "Free shoes"}, "wamid.unknown")
    await shop.work()

    assert len(shop.graph.sent) > sent_before
    assert all(m.type != "image" for m in shop.graph.sent)


async def test_cards_wait_for_the_window_like_any_free_form_message(
    shop: whatsapp_support.Shop,
) -> None:
    shop.says("Hello", wa_id=CUSTOMER)
    await shop.work()
    async with shop.database.transaction() as session:
        await session.execute(
            update(Conversation).values(last_inbound_at=datetime.now(UTC) - timedelta(hours=25))
        )
    sent_before = len(shop.graph.sent)

    message_id = await _send_cards(shop, [card(0), card(1)])
    await shop.work()

    assert len(shop.graph.sent) == sent_before
    async with shop.database.transaction() as session:
        message = await session.get_one(Message, message_id)
    assert message.status == MessageStatus.FAILED
    assert message.error_title == delivery.WINDOW_CLOSED


async def test_product_questions_get_the_catalogues_cards_and_a_tap_its_details(
    shop: whatsapp_support.Shop,
) -> None:
    for key in ("fit", "too_dear", "size_42_sold_out", "draft"):
        created = shop.api.post("/api/v1/catalog/products", json=SHOES[key])
        assert created.status_code == 201, created.text
    await shop.work()  # the catalogue's search index

    # One product fits: its image, with the answer (price, stock) as the caption.
    shop.says("Do you have waterproof trail shoes under 100 EUR in size 42?", wa_id=CUSTOMER)
    await shop.work()
    [answer] = shop.graph.sent
    assert answer.type == "image"
    caption = answer.body["image"]["caption"]
    assert "Waterproof Trail Running Shoe (42 / Black): 89.90 EUR, in stock" in caption
    assert "Summit" not in caption
    assert "Prototype" not in caption

    # Several: a list, each row's price and stock; a tap answers with that product.
    shop.says("Which trail shoes do you have?", wa_id=CUSTOMER)
    await shop.work()
    listed = shop.graph.sent[-1]
    assert listed.type == "interactive"
    rows = {row["title"]: row for row in rows_of(dict(listed.body))}
    assert "Prototype Trail Shoe" not in rows  # a draft is never shown
    fit = rows["Waterproof Trail…"]
    assert fit["description"] == "89.90 EUR · in stock"
    assert rows["Summit Pro Trail Shoe"]["description"] == "149.00 EUR · in stock"

    _tap(shop, {"id": fit["id"], "title": fit["title"]}, listed.wamid)
    await shop.work()

    details = shop.graph.sent[-1]
    assert details.type == "image"
    assert (
        details.body["image"]["caption"] == "- Waterproof Trail Running Shoe: 89.90 EUR, in stock"
    )


async def test_a_german_shop_lists_its_products_in_german(
    live_server: LiveServer, database: Database, settings: Settings, graph: GraphSimulator
) -> None:
    shop = await whatsapp_support.open_shop(
        live_server, database, settings, graph, assistant={"languages": ["de"]}
    )
    try:
        for key in ("fit", "too_dear", "road"):
            created = shop.api.post("/api/v1/catalog/products", json=SHOES[key])
            assert created.status_code == 201, created.text
        await shop.work()

        shop.says("Haben Sie Trail Shoes?", wa_id=CUSTOMER)
        await shop.work()

        listed = shop.graph.sent[-1]
        assert listed.type == "interactive"
        assert listed.body["interactive"]["action"]["button"] == "Produkte ansehen"
        descriptions = [row["description"] for row in rows_of(dict(listed.body))]
        assert descriptions
        assert all(d.endswith("auf Lager") for d in descriptions)

        row = rows_of(dict(listed.body))[0]
        _tap(shop, {"id": row["id"], "title": row["title"]}, listed.wamid)
        await shop.work()
        assert "auf Lager" in shop.graph.sent[-1].body["image"]["caption"]
    finally:
        shop.close()
