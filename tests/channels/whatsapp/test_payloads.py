"""WhatsApp webhook parsing over every captured SDK fixture, and over hostile bodies."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cybergine.channels.whatsapp.payloads import (
    InboundMessage,
    PayloadError,
    WebhookBatch,
    parse_webhook,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "whatsapp"
ALL = sorted(p.stem for p in FIXTURES.glob("*.json"))


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))


def parse(name: str) -> WebhookBatch:
    return parse_webhook(load(name))


def first(name: str) -> InboundMessage:
    return parse(name).messages[0]


# Fixtures that legitimately yield nothing, and the problem that explains why.
EMPTY = {
    # No "from" and a contact with only a business-scoped user_id (no wa_id): nobody to
    # answer, so it is skipped rather than attributed to a guess.
    "text_12": "has no sender wa_id",
}


def test_fixture_set_is_complete() -> None:
    assert len(ALL) == 106


@pytest.mark.parametrize("name", ALL)
def test_every_fixture_parses(name: str) -> None:
    batch = parse(name)
    if name in EMPTY:
        assert len(batch) == 0
        assert any(EMPTY[name] in p for p in batch.problems), batch.problems
        return
    assert len(batch) >= 1
    assert batch.problems == ()
    for message in batch.messages:
        assert message.message_id
        assert message.from_wa_id
        assert message.timestamp.tzinfo is UTC
        assert message.raw["id"] == message.message_id
    for status in batch.statuses:
        assert status.timestamp.tzinfo is UTC


# fixture -> (type, text, interactive_id, media id) of its first message
MESSAGES: dict[str, tuple[str, str | None, str | None, str | None]] = {
    "text_01": ("text", "Body Text", None, None),
    "text_14": ("text", "Hi", None, None),
    "image_01": ("image", None, None, "65463453"),
    "image_04": ("image", "CAPTION_TEXT", None, "IMAGE_ID"),
    "audio_02": ("audio", None, None, "1234567890987654321"),
    "audio_03": ("audio", None, None, "827776106019109"),
    "video_01": ("video", "caption", None, "765756756"),
    "video_02": ("video", "hello world", None, "661828760183585"),
    "document_01": ("document", "caption", None, "1234567890987654321"),
    "document_02": ("document", None, None, "848704520347750"),
    "sticker_02": ("sticker", None, None, "1234567890987654321"),
    "sticker_04": ("sticker", None, None, "STICKER_ID"),
    "location_01": ("location", "12.25089,43.90539", None, None),
    "location_02": ("location", "Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025", None, None),
    "location_04": ("location", "LOCATION_NAME, LOCATION_ADDRESS", None, None),
    "contacts_01": ("contacts", "Chandler Bing, Monica, Rachel Green", None, None),
    "contacts_03": ("contacts", "CONTACT_FORMATTED_NAME", None, None),
    "interactive_button_reply_01": ("interactive", "title", "callback_data", None),
    "interactive_button_reply_02": (
        "interactive",
        "button-text",
        "unique-button-identifier-here",
        None,
    ),
    "interactive_list_reply_01": ("interactive", "title", "callback_data", None),
    "interactive_list_reply_02": ("interactive", "title\ndescription", "callback_data", None),
    "interactive_list_reply_03": (
        "interactive",
        "list_reply_title\nlist_reply_description",
        "list_reply_id",
        None,
    ),
    "interactive_nfm_reply_01": (
        "interactive",
        "comment_text: Comment Text\ndelivery_rating: 4\npurchase_rating: 2\n"
        "recommend_radio: 0\ncs_rating: 0",
        None,
        None,
    ),
    "interactive_nfm_reply_03": (
        "interactive",
        "screen_0_name_0: Email\nscreen_0_orderNumber_1: ID",
        None,
        None,
    ),
    "errors_01": ("interactive", None, None, None),  # interactive object missing upstream
    "button_01": ("button", "title", "callback_data", None),
    "button_03": ("button", "SIM", "SIM", None),
    "button_04": ("button", "No", "No-Button-Payload", None),
    "reaction_01": ("reaction", "😮", None, None),
    "reaction_02": ("reaction", None, None, None),  # emoji "" = reaction removed
    "reaction_03": ("reaction", None, None, None),  # no emoji = reaction removed
    "order_01": (
        "order",
        "3 x HAMBURGER @ 30 ILS\n2 x FRENCH_FRIES @ 35 ILS\n2 x SODA @ 10 ILS",
        None,
        None,
    ),
    "system_01": ("system", "User A changed from 972987654321 to 972912345678", None, None),
    "system_02": ("system", "User identity changed", None, None),
    "request_welcome_01": ("request_welcome", None, None, None),
    "unsupported_02": ("unsupported", None, None, None),
    "unknown_01": ("unknown", None, None, None),
    "revoke_01": ("revoke", None, None, None),
    "edit_01": ("edit", "Updated image caption", None, None),
}


@pytest.mark.parametrize(("name", "expected"), MESSAGES.items(), ids=list(MESSAGES))
def test_first_message(name: str, expected: tuple[str, str | None, str | None, str | None]) -> None:
    message = first(name)
    media_id = message.media.id if message.media else None
    assert (message.type, message.text, message.interactive_id, media_id) == expected


# fixture -> (status, error codes, pricing category)
STATUSES: dict[str, tuple[str, tuple[int | None, ...], str | None]] = {
    "status_sent_01": ("sent", (), "service"),
    "status_sent_03": ("sent", (), "marketing"),
    "status_sent_04": ("sent", (), "business_initiated"),
    "status_delivered_01": ("delivered", (), "service"),
    "status_delivered_04": ("delivered", (), None),
    "status_delivered_06": ("delivered", (), "authentication"),
    "status_delivered_08": ("delivered", (), "utility"),
    "status_read_01": ("read", (), "service"),
    "status_read_02": ("read", (), None),  # group recipient
    "status_read_04": ("read", (), None),
    "status_played_01": ("played", (), "service"),
    "status_failed_01": ("failed", (130472,), None),
    "status_failed_02": ("failed", (131053,), None),
    "status_failed_03": ("failed", (131047,), None),
    "status_failed_04": ("failed", (131053,), None),
}


@pytest.mark.parametrize(("name", "expected"), STATUSES.items(), ids=list(STATUSES))
def test_first_status(name: str, expected: tuple[str, tuple[int | None, ...], str | None]) -> None:
    batch = parse(name)
    assert batch.messages == ()
    status = batch.statuses[0]
    assert (status.status, tuple(e.code for e in status.errors), status.pricing_category) == (
        expected
    )


# fixture -> the field of its only change
OTHER = {
    "nonmessage_account_review_update_01": "account_review_update",
    "nonmessage_account_update_01": "account_update",
    "nonmessage_account_update_02": "account_update",
    "nonmessage_account_update_03": "account_update",
    "nonmessage_message_template_status_update_01": "message_template_status_update",
    "nonmessage_message_template_status_update_02": "message_template_status_update",
    "nonmessage_phone_number_name_update_01": "phone_number_name_update",
    "nonmessage_phone_number_quality_update_01": "phone_number_quality_update",
    "nonmessage_smb_message_echoes_01": "smb_message_echoes",
}


@pytest.mark.parametrize(("name", "field"), OTHER.items(), ids=list(OTHER))
def test_other_fields(name: str, field: str) -> None:
    batch = parse(name)
    assert [o.field for o in batch.other] == [field]
    # Echoes of what the business sent from the app are not inbound customer messages.
    assert batch.messages == ()
    assert batch.statuses == ()


def test_echo_keeps_its_number_and_value() -> None:
    (echo,) = parse("nonmessage_smb_message_echoes_01").other
    assert echo.phone_number_id == "1122334455667"
    assert echo.value["message_echoes"][0]["text"]["body"] == "Test message"


def test_text_message_in_full() -> None:
    message = first("text_02")
    assert message.phone_number_id == "1122334455667"
    assert message.from_wa_id == "972987654321"
    assert message.profile_name == "Test Name"
    assert message.timestamp == datetime(2023, 10, 11, 17, 19, 6, tzinfo=UTC)
    assert message.context_message_id == "wamid.xyzxyz=="
    assert message.reaction_to is None
    assert message.errors == ()


def test_forwarded_context_without_id_is_not_a_reply() -> None:
    assert first("text_03").context_message_id is None


def test_integer_timestamps_are_accepted() -> None:
    assert first("button_04").timestamp == datetime.fromtimestamp(1669233778, tz=UTC)


def test_media_details() -> None:
    audio = first("audio_02").media
    assert audio is not None
    assert (audio.mime_type, audio.voice) == ("audio/ogg; codecs=opus", True)
    sticker = first("sticker_02").media
    assert sticker is not None
    assert (sticker.mime_type, sticker.animated) == ("image/webp", True)
    document = first("document_01").media
    assert document is not None
    assert (document.filename, document.caption) == ("filename.pdf", "caption")
    image = first("image_02").media
    assert image is not None
    assert image.url is not None
    assert image.sha256 == "4654+8g="


def test_reactions_point_at_their_message() -> None:
    assert first("reaction_01").reaction_to == "wamid.yzxyzx="
    assert first("reaction_06").reaction_to == "MESSAGE_ID"


def test_unsupported_message_carries_its_error() -> None:
    (error,) = first("unsupported_01").errors
    assert error.code == 131051
    (error,) = first("unknown_01").errors  # "details" at top level, as netflie has it
    assert (error.code, error.details) == (131051, "Message type is not currently supported")


def test_value_level_errors() -> None:
    batch = parse("errors_01")
    (error,) = batch.errors
    assert (error.code, error.title, error.details) == (
        131000,
        "Something went wrong",
        "Unsupported webhook payload",
    )
    assert len(batch.messages) == 1


def test_failed_status_error_detail() -> None:
    (status,) = parse("status_failed_01").statuses
    (error,) = status.errors
    assert error.code == 130472
    assert error.details is not None
    assert error.details.startswith("Failed to send message")
    assert status.recipient_wa_id == "972987654321"
    assert status.message_id == "wamid.xyzxyz"


def test_conversation_id() -> None:
    (status,) = parse("status_sent_03").statuses
    assert status.conversation_id == "CONVERSATION_ID"


def test_profile_name_matches_the_sender() -> None:
    assert first("text_11").profile_name is None  # contact without a profile
    assert first("system_01").profile_name is None  # no contacts at all
    # Sender and contact differ (placeholders): falls back to the first contact's name.
    assert first("text_13").profile_name == "NAME"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("multi_01", [("text", "MESSAGE_BODY"), ("text", "MESSAGE_BODY2")]),
        ("multi_02", [("text", "Hello from a text message"), ("reaction", "👍")]),
        ("multi_03", [("text", "Hello from a text message")]),
        (
            "multi_04",
            [
                ("text", "Hello from a text message!"),
                ("unknown", None),  # a location sent without "type" upstream
                ("reaction", "👍"),
                ("sticker", None),
            ],
        ),
    ],
)
def test_multi_message_bodies(name: str, expected: list[tuple[str, str | None]]) -> None:
    batch = parse(name)
    assert [(m.type, m.text) for m in batch.messages] == expected


def test_multi_change_bodies_keep_other_fields() -> None:
    assert [o.field for o in parse("multi_03").other] == ["user_preferences"]
    assert [o.field for o in parse("multi_04").other] == ["user_preferences"]


def test_several_entries() -> None:
    # No fixture has two entries: build one from three real bodies.
    body = load("text_01")
    body["entry"] += load("status_failed_01")["entry"] + load("multi_04")["entry"]
    batch = parse_webhook(body)
    assert len(batch.messages) == 1 + 4
    assert [s.status for s in batch.statuses] == ["failed"]
    assert len(batch.other) == 1
    assert batch.problems == ()


# --- hostile bodies -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        None,
        "whatsapp_business_account",
        [],
        42,
        {},
        {"object": "page", "entry": []},
        {"object": "whatsapp_business_account"},
        {"object": "whatsapp_business_account", "entry": {}},
        {"object": "whatsapp_business_account", "entry": "x"},
    ],
)
def test_not_a_whatsapp_webhook(body: Any) -> None:
    with pytest.raises(PayloadError):
        parse_webhook(body)


def test_empty_entry_list_is_an_empty_batch() -> None:
    batch = parse_webhook({"object": "whatsapp_business_account", "entry": []})
    assert len(batch) == 0
    assert batch.problems == ()


def test_broken_entries_and_changes_are_reported() -> None:
    body = load("text_01")
    good = body["entry"][0]
    body["entry"] = [
        None,
        {"id": "1"},
        {
            "changes": [
                None,
                {"field": "messages"},
                {"value": {}},
                {"field": "messages", "value": {}},
            ]
        },
        good,
    ]
    batch = parse_webhook(body)
    assert [m.text for m in batch.messages] == ["Body Text"]
    assert len(batch.problems) == 6
    assert "entry[0]: is not an object" in batch.problems


def test_message_missing_id_does_not_lose_the_others() -> None:
    body = load("multi_02")
    del body["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    batch = parse_webhook(body)
    assert [m.type for m in batch.messages] == ["reaction"]
    (problem,) = batch.problems
    assert "messages[0]" in problem
    assert "no id" in problem


@pytest.mark.parametrize(
    "timestamp",
    ["", "yesterday", "12:00", "1e9", "-5", "²", "9" * 5000, None, True, [], {}, 1e300, -1],
)
def test_garbage_timestamps_skip_only_that_message(timestamp: Any) -> None:
    body = load("multi_02")
    value = body["entry"][0]["changes"][0]["value"]
    value["messages"][0]["timestamp"] = timestamp
    value["statuses"] = [{"id": "wamid.S", "status": "read", "timestamp": timestamp}]
    batch = parse_webhook(body)
    assert [m.type for m in batch.messages] == ["reaction"]
    assert batch.statuses == ()
    assert len(batch.problems) == 2
    assert all("timestamp" in p for p in batch.problems)


def test_missing_metadata_skips_with_a_reason() -> None:
    body = load("text_01")
    del body["entry"][0]["changes"][0]["value"]["metadata"]
    batch = parse_webhook(body)
    assert batch.messages == ()
    (problem,) = batch.problems
    assert "phone_number_id" in problem


def test_sender_falls_back_to_the_only_contact() -> None:
    body = load("text_01")
    del body["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    assert parse_webhook(body).messages[0].from_wa_id == "972987654321"


def test_sender_is_not_guessed_among_several_contacts() -> None:
    body = load("text_01")
    value = body["entry"][0]["changes"][0]["value"]
    del value["messages"][0]["from"]
    value["contacts"].append({"profile": {"name": "Someone Else"}, "wa_id": "15550000000"})
    batch = parse_webhook(body)
    assert batch.messages == ()
    assert len(batch.problems) == 1


def test_profile_name_comes_from_the_matching_contact() -> None:
    body = load("text_01")
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"].insert(0, {"profile": {"name": "Someone Else"}, "wa_id": "15550000000"})
    assert parse_webhook(body).messages[0].profile_name == "Test Name"


def test_odd_shapes_never_crash() -> None:
    body = load("text_01")
    value = body["entry"][0]["changes"][0]["value"]
    template = value["messages"][0]
    odd: list[Any] = [
        "not a message",
        {**template, "id": 12345},  # numeric id: kept, as a string
        {**template, "id": "w.1", "type": None},
        {**template, "id": "w.2", "type": "text", "text": "not an object"},
        {**template, "id": "w.3", "type": "image", "image": {"caption": "no id"}},
        {**template, "id": "w.4", "type": "interactive", "interactive": {"type": "nope"}},
        {**template, "id": "w.5", "type": "interactive", "interactive": {"type": 3}},
        {**template, "id": "w.6", "type": "location", "location": {"latitude": True}},
        {**template, "id": "w.7", "type": "contacts", "contacts": [None, {"name": "x"}]},
        {**template, "id": "w.8", "type": "order", "order": {"product_items": [None, 3]}},
        {
            **template,
            "id": "w.9",
            "type": "interactive",
            "interactive": {"type": "nfm_reply", "nfm_reply": {"response_json": "{bad"}},
        },
        {**template, "id": "w.10", "errors": [None, {"code": "131051"}, {"code": True}]},
        {**template, "id": "w.11", "context": "x", "reaction": []},
    ]
    value["messages"] = odd
    value["contacts"] = [None, "x", {"profile": "x", "wa_id": 5}]
    value["statuses"] = "not a list"
    batch = parse_webhook(body)
    ids = [m.message_id for m in batch.messages]
    assert ids == ["12345", *(f"w.{i}" for i in range(1, 12))]
    by_id = {m.message_id: m for m in batch.messages}
    assert by_id["w.1"].type == "unknown"
    assert by_id["w.2"].text is None
    assert by_id["w.3"].media is None
    assert by_id["w.3"].text == "no id"
    assert by_id["w.9"].text is None
    assert [e.code for e in by_id["w.10"].errors] == [None, 131051, None]
    assert len(batch.problems) == 2  # the string message and the statuses


def test_a_thousand_messages() -> None:
    body = load("text_01")
    value = body["entry"][0]["changes"][0]["value"]
    template = value["messages"][0]
    value["messages"] = [
        {**copy.deepcopy(template), "id": f"wamid.{i}", "text": {"body": f"#{i}"}}
        for i in range(1000)
    ]
    value["messages"][500]["timestamp"] = "garbage"
    batch = parse_webhook(body)
    assert len(batch.messages) == 999
    assert batch.messages[-1].text == "#999"
    assert len(batch.problems) == 1


def test_values_are_frozen() -> None:
    message = first("text_01")
    with pytest.raises(AttributeError):
        message.text = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        message.raw["id"] = "changed"  # type: ignore[index]
