"""Each channel's adapter answers the conversation core's questions by its own rules:
WhatsApp's 24-hour customer-service window (free-form until the last minute, then only
a template), web chat's "always"; and rich content in each channel's own form."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cybergine.channels.adapters import register_channel_adapters
from cybergine.channels.webchat.adapter import WebChatAdapter
from cybergine.channels.whatsapp.adapter import WhatsAppAdapter
from cybergine.conversations.channel import ChannelAdapter, RichContent, adapter_for
from cybergine.conversations.models import Channel
from tests.support.product_cards import card

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

BUTTONS = {
    "buttons": [
        {"id": "talk_to_human", "title": "Talk to a person"},
        {"id": "track", "title": "Track my order"},
    ]
}


def _content(payload: dict[str, object] | None) -> RichContent:
    return RichContent(
        uuid.UUID(int=7), "interactive", "Anything else?", payload, to="447700900123"
    )


@pytest.mark.parametrize(
    ("ago", "may_send"),
    [
        (timedelta(hours=23, minutes=59), True),
        (timedelta(hours=24, minutes=1), False),
    ],
)
def test_whatsapp_lets_free_form_messages_through_for_24_hours(
    ago: timedelta, may_send: bool
) -> None:
    assert WhatsAppAdapter().may_send_free_form(NOW - ago, now=NOW) is may_send


def test_whatsapp_needs_a_customer_message_to_open_the_window() -> None:
    assert WhatsAppAdapter().may_send_free_form(None, now=NOW) is False


@pytest.mark.parametrize(
    "last_inbound_at",
    [None, NOW - timedelta(hours=23, minutes=59), NOW - timedelta(hours=24, minutes=1)],
)
def test_web_chat_may_always_write(last_inbound_at: datetime | None) -> None:
    assert WebChatAdapter().may_send_free_form(last_inbound_at, now=NOW) is True


def test_whatsapp_renders_buttons_as_an_interactive_message() -> None:
    [body] = WhatsAppAdapter().render(_content(BUTTONS))

    assert body["to"] == "447700900123"
    assert body["type"] == "interactive"
    assert body["biz_opaque_callback_data"] == str(uuid.UUID(int=7))
    interactive = body["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"] == {"text": "Anything else?"}
    assert interactive["action"]["buttons"] == [
        {"type": "reply", "reply": {"id": "talk_to_human", "title": "Talk to a person"}},
        {"type": "reply", "reply": {"id": "track", "title": "Track my order"}},
    ]


def test_whatsapp_renders_plain_text_without_buttons() -> None:
    [body] = WhatsAppAdapter().render(_content(None))

    assert body["type"] == "text"
    assert body["text"]["body"] == "Anything else?"


def test_web_chat_renders_buttons_for_the_widget() -> None:
    assert WebChatAdapter().render(_content(BUTTONS)) == [
        {
            "text": "Anything else?",
            "buttons": [
                {"id": "talk_to_human", "title": "Talk to a person"},
                {"id": "track", "title": "Track my order"},
            ],
            "products": [],
        }
    ]


def test_web_chat_delivers_by_storing_and_whatsapp_by_its_job() -> None:
    assert WebChatAdapter().delivers_by_storing is True
    assert WebChatAdapter().delivery_job is None
    assert WhatsAppAdapter().delivers_by_storing is False
    assert WhatsAppAdapter().delivery_job == "whatsapp:send_message"


def test_the_widget_shows_sources_apart_and_whatsapp_in_the_text() -> None:
    assert WebChatAdapter().shows_sources_apart is True
    assert WhatsAppAdapter().shows_sources_apart is False


def test_an_unnamed_customer_is_called_by_their_id_on_the_channel() -> None:
    visitor = "3f0c9a7e-5b1d-4c7a-9e2f-8d6b4a1c0e57"
    assert WebChatAdapter().unnamed_customer_label(visitor) == "Web visitor 3f0c9a7e"
    assert WhatsAppAdapter().unnamed_customer_label("447700900123") == "447700900123"


def test_the_composition_root_registers_an_adapter_for_every_channel() -> None:
    register_channel_adapters()

    for channel in Channel:
        adapter: ChannelAdapter = adapter_for(channel)
        assert adapter.channel is channel


LIST = {
    "list": {
        "button": "Choose a size",
        "sections": [
            {
                "title": "",
                "rows": [
                    {"id": "size_42", "title": "42"},
                    {"id": "size_43", "title": "43", "description": "Runs large"},
                ],
            }
        ],
    }
}


def test_whatsapp_renders_a_list_as_an_interactive_list() -> None:
    [body] = WhatsAppAdapter().render(_content(LIST))

    interactive = body["interactive"]
    assert interactive["type"] == "list"
    assert interactive["action"] == {
        "button": "Choose a size",
        "sections": [
            {
                "rows": [
                    {"id": "size_42", "title": "42"},
                    {"id": "size_43", "title": "43", "description": "Runs large"},
                ]
            }
        ],
    }


def test_web_chat_shows_a_lists_rows_as_buttons() -> None:
    [view] = WebChatAdapter().render(_content(LIST))

    assert view["buttons"] == [
        {"id": "size_42", "title": "42"},
        {"id": "size_43", "title": "43"},
    ]


def test_each_channel_renders_product_cards_in_its_own_form() -> None:
    cards = [card(0), card(1, url="javascript:alert(1)", available="yes")]
    content = _content({"products": cards})

    [view] = WebChatAdapter().render(content)
    assert [p["id"] for p in view["products"]] == [cards[0]["id"], cards[1]["id"]]
    assert view["products"][1]["url"] is None
    assert view["products"][1]["available"] is False

    listed, links = WhatsAppAdapter().render(content)
    assert listed["interactive"]["type"] == "list"
    assert links["text"]["body"] == f"Ridge Runner shoe 0: {cards[0]['url']}"
