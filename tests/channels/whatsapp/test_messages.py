"""Outbound message bodies: splitting long text, and Meta's limits on every builder."""

from __future__ import annotations

import random

import pytest

from cybergine.channels.whatsapp.messages import (
    TEXT_LIMIT,
    buttons_body,
    list_body,
    read_receipt_body,
    split_text,
    template_body,
    text_body,
)

TO = "15551234567"


def assert_faithful(text: str, parts: list[str], limit: int) -> None:
    """Every part fits and is non-empty, and the parts are the text in order with only
    whitespace removed between them."""
    assert parts, "a text with content gives at least one part"
    pos = 0
    for n, part in enumerate(parts):
        assert 0 < len(part) <= limit, (n, len(part))
        assert part.strip(), f"part {n} is only whitespace"
        if not text.startswith(part, pos):
            gap_end = pos
            while gap_end < len(text) and text[gap_end].isspace():
                gap_end += 1
            assert gap_end > pos, f"part {n} does not follow its predecessor"
            assert text.startswith(part, gap_end), f"part {n} is not the text that follows"
            pos = gap_end
        pos += len(part)
    assert not text[pos:].strip(), "text was lost at the end"


# --- split_text ------------------------------------------------------------------------


def test_short_text_is_one_part_unchanged() -> None:
    assert split_text("  Hello,\n\nworld!  ") == ["  Hello,\n\nworld!  "]


@pytest.mark.parametrize("text", ["", " ", "\n\n\t "])
def test_nothing_to_send_gives_no_parts(text: str) -> None:
    assert split_text(text) == []


def test_exactly_the_limit_is_one_part() -> None:
    text = ("word " * 1000)[:4095] + "x"
    assert len(text) == TEXT_LIMIT
    assert split_text(text) == [text]


def test_one_over_the_limit_without_spaces_is_cut_hard() -> None:
    text = "a" * 4097
    assert split_text(text) == ["a" * 4096, "a"]


def test_long_text_without_spaces_loses_nothing() -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(10_000))
    parts = split_text(text)
    assert [len(p) for p in parts] == [4096, 4096, 1808]
    assert "".join(parts) == text


def test_many_paragraphs_are_kept_whole_and_packed() -> None:
    paragraphs = [f"Paragraph {n}. " + ("lorem ipsum dolor " * 16).strip() for n in range(60)]
    text = "\n\n".join(paragraphs)
    parts = split_text(text)
    assert len(parts) > 1
    assert_faithful(text, parts, TEXT_LIMIT)
    # Every part is a run of whole paragraphs, and no part could have taken the next one.
    consumed = 0
    for part in parts:
        count = part.count("Paragraph ")
        assert part == "\n\n".join(paragraphs[consumed : consumed + count])
        consumed += count
        if consumed < len(paragraphs):
            assert len(part) + 2 + len(paragraphs[consumed]) > TEXT_LIMIT
    assert consumed == len(paragraphs)


def test_paragraph_boundary_is_preferred_to_a_later_line_break() -> None:
    text = "first paragraph\n\nsecond line one\nsecond line two"
    assert split_text(text, limit=40) == ["first paragraph", "second line one\nsecond line two"]


def test_line_break_is_preferred_to_a_sentence_end() -> None:
    text = "One line. Still it.\nNext line goes on and on"
    assert split_text(text, limit=30) == ["One line. Still it.", "Next line goes on and on"]


def test_sentence_end_is_preferred_to_a_later_space() -> None:
    text = "Short one. Then a much longer sentence follows here"
    assert split_text(text, limit=30) == [
        "Short one.",
        "Then a much longer sentence",
        "follows here",
    ]


def test_sentence_end_after_a_closing_quote() -> None:
    text = 'He said "stop." Then left the room quietly'
    assert split_text(text, limit=25)[0] == 'He said "stop."'


def test_words_are_never_cut_when_they_fit() -> None:
    words = [f"w{n}" * (1 + n % 7) for n in range(400)]
    text = " ".join(words)
    parts = split_text(text, limit=50)
    assert_faithful(text, parts, 50)
    assert [w for p in parts for w in p.split(" ")] == words


def test_only_a_word_longer_than_the_limit_is_cut() -> None:
    text = "short " + "x" * 25 + " end"
    assert split_text(text, limit=10) == ["short", "xxxxxxxxxx", "xxxxxxxxxx", "xxxxx end"]


def test_emoji_are_counted_as_characters_not_bytes() -> None:
    text = "\U0001f600" * 5000  # 4 bytes each in UTF-8
    parts = split_text(text)
    assert [len(p) for p in parts] == [4096, 904]
    assert "".join(parts) == text


def test_hard_cut_does_not_split_a_joined_emoji() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 5 code points, one glyph
    text = family * 3
    parts = split_text(text, limit=7)
    assert parts == [family, family, family]


def test_hard_cut_does_not_split_a_combining_accent_or_a_flag() -> None:
    accented = "e\u0301" * 5  # é written as e + combining acute
    assert split_text(accented, limit=3) == ["e\u0301", "e\u0301", "e\u0301", "e\u0301", "e\u0301"]
    flags = "\U0001f1eb\U0001f1f7" * 3  # three French flags
    assert split_text(flags, limit=3) == ["\U0001f1eb\U0001f1f7"] * 3


def test_multibyte_scripts_split_on_their_spaces() -> None:
    arabic = " ".join(["مرحبا"] * 2000)
    parts = split_text(arabic)
    assert_faithful(arabic, parts, TEXT_LIMIT)
    assert all(set(p.split(" ")) == {"مرحبا"} for p in parts)


def test_unspaced_chinese_splits_after_full_stops() -> None:
    text = "你好世界。」今天天气很好。我们走吧\uff01"
    assert split_text(text, limit=8) == ["你好世界。」", "今天天气很好。", "我们走吧\uff01"]


def test_whitespace_at_the_cut_is_dropped_but_kept_inside_parts() -> None:
    text = "alpha  beta\n\n\n   gamma"
    assert split_text(text, limit=11) == ["alpha  beta", "gamma"]


def test_overlong_leading_whitespace_is_not_a_part() -> None:
    assert split_text(" " * 10 + "abc", limit=4) == ["abc"]


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        split_text("abc", limit=0)


@pytest.mark.parametrize("seed", range(40))
def test_random_texts_split_faithfully(seed: int) -> None:
    rng = random.Random(seed)
    pieces = ["word", "longerword", "a", "\U0001f600", "é", ".", "!", "?", "x" * 60]
    separators = [" ", "  ", "\n", "\n\n", " \n ", "\t", ". ", "", "\r\n"]
    text = "".join(rng.choice(pieces) + rng.choice(separators) for _ in range(rng.randint(1, 600)))
    limit = rng.choice([1, 2, 5, 17, 50, 300, 4096])
    parts = split_text(text, limit=limit)
    if not text.strip():
        assert parts == []
    else:
        assert_faithful(text, parts, limit)


# --- text -----------------------------------------------------------------------------


def test_text_body_shape() -> None:
    assert text_body(TO, "Hello") == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": "text",
        "text": {"preview_url": False, "body": "Hello"},
    }


def test_reply_to_and_callback_data() -> None:
    body = text_body(TO, "Hi", preview_url=True, reply_to="wamid.IN", callback_data="conv-42")
    assert body["context"] == {"message_id": "wamid.IN"}
    assert body["biz_opaque_callback_data"] == "conv-42"
    assert body["text"]["preview_url"] is True


def test_text_limits_are_characters_and_errors_do_not_quote_the_text() -> None:
    assert text_body(TO, "\U0001f600" * TEXT_LIMIT)["text"]["body"] == "\U0001f600" * 4096
    secret_text = "confidential " * 400  # 5200 characters
    with pytest.raises(ValueError, match="5200 characters; WhatsApp allows at most 4096") as err:
        text_body(TO, secret_text)
    assert "confidential" not in str(err.value)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="text is empty"):
        text_body(TO, text)


def test_recipient_is_required() -> None:
    with pytest.raises(ValueError, match="recipient"):
        text_body(" ", "Hi")


def test_callback_data_is_limited_to_512() -> None:
    assert text_body(TO, "Hi", callback_data="c" * 512)["biz_opaque_callback_data"] == "c" * 512
    with pytest.raises(ValueError, match="callback data is 513 characters"):
        text_body(TO, "Hi", callback_data="c" * 513)


# --- buttons --------------------------------------------------------------------------


def test_buttons_body_shape() -> None:
    body = buttons_body(
        TO, "Pick one", [("yes", "Yes"), ("no", "No")], header="Question", footer="Thanks"
    )
    assert body["type"] == "interactive"
    assert body["interactive"] == {
        "type": "button",
        "header": {"type": "text", "text": "Question"},
        "footer": {"text": "Thanks"},
        "body": {"text": "Pick one"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                {"type": "reply", "reply": {"id": "no", "title": "No"}},
            ]
        },
    }
    assert body["messaging_product"] == "whatsapp"
    assert body["recipient_type"] == "individual"


def test_button_title_of_twenty_emoji_fits() -> None:
    body = buttons_body(TO, "Pick", [("a", "\U0001f44d" * 20)])
    assert body["interactive"]["action"]["buttons"][0]["reply"]["title"] == "\U0001f44d" * 20


@pytest.mark.parametrize(
    ("text", "buttons", "message"),
    [
        ("Pick", [], "0 buttons given; WhatsApp allows 1 to 3"),
        ("Pick", [(str(n), f"B{n}") for n in range(4)], "4 buttons given"),
        ("Pick", [("a", "t" * 21)], "button 1 title is 21 characters; WhatsApp allows at most 20"),
        ("Pick", [("a", "A"), ("b", " ")], "button 2 title is empty"),
        ("Pick", [("i" * 257, "A")], "button 1 id is 257 characters"),
        ("b" * 1025, [("a", "A")], "body text is 1025 characters; WhatsApp allows at most 1024"),
        ("Pick", [("a", "A"), ("a", "B")], "button ids must be unique"),
        ("Pick", [("a", "Same"), ("b", "Same")], "button titles must be unique"),
    ],
)
def test_buttons_limits(text: str, buttons: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        buttons_body(TO, text, buttons)


def test_buttons_footer_limit() -> None:
    with pytest.raises(ValueError, match="footer is 61 characters"):
        buttons_body(TO, "Pick", [("a", "A")], footer="f" * 61)


# --- lists ----------------------------------------------------------------------------


def test_list_body_shape_single_untitled_section() -> None:
    body = list_body(TO, "Choose", "Options", [("", [("r1", "Row 1", None), ("r2", "Row 2", "d")])])
    assert body["interactive"] == {
        "type": "list",
        "body": {"text": "Choose"},
        "action": {
            "button": "Options",
            "sections": [
                {
                    "rows": [
                        {"id": "r1", "title": "Row 1"},
                        {"id": "r2", "title": "Row 2", "description": "d"},
                    ]
                }
            ],
        },
    }


def test_list_body_several_sections_keep_titles() -> None:
    body = list_body(
        TO, "Choose", "Menu", [("Food", [("f", "Pizza", None)]), ("Drinks", [("d", "Tea", None)])]
    )
    assert [s["title"] for s in body["interactive"]["action"]["sections"]] == ["Food", "Drinks"]


def rows(n: int, prefix: str = "r") -> list[tuple[str, str, str | None]]:
    return [(f"{prefix}{i}", f"Row {i}", None) for i in range(n)]


@pytest.mark.parametrize(
    ("button", "sections", "message"),
    [
        ("Menu", [("A", rows(6, "a")), ("B", rows(5, "b"))], "11 rows given"),
        ("Menu", [("", [])], "0 rows given"),
        ("m" * 21, [("", rows(1))], "list button label is 21 characters"),
        ("Menu", [("", [("r", "t" * 25, None)])], "section 1 row 1 title is 25 characters"),
        ("Menu", [("", [("r", "t", "d" * 73)])], "section 1 row 1 description is 73 characters"),
        ("Menu", [("A", rows(1, "a")), ("", rows(1, "b"))], "section 2 title is empty"),
        ("Menu", [("s" * 25, rows(1))], "section 1 title is 25 characters"),
        ("Menu", [("A", rows(1)), ("B", rows(1))], "row ids must be unique"),
        ("Menu", [], "0 sections given"),
    ],
)
def test_list_limits(
    button: str,
    sections: list[tuple[str, list[tuple[str, str, str | None]]]],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        list_body(TO, "Choose", button, sections)


def test_ten_rows_across_sections_fit() -> None:
    body = list_body(TO, "Choose", "Menu", [("A", rows(4, "a")), ("B", rows(6, "b"))])
    assert sum(len(s["rows"]) for s in body["interactive"]["action"]["sections"]) == 10


# --- templates and read receipts ------------------------------------------------------


def test_template_body_shape() -> None:
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}]
    body = template_body(TO, "order_update", "en_US", components, callback_data="t-1")
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": components,
    }
    assert body["biz_opaque_callback_data"] == "t-1"
    assert "components" not in template_body(TO, "hello_world", "en_US")["template"]


@pytest.mark.parametrize(("name", "code"), [("", "en_US"), ("hello_world", "")])
def test_template_name_and_language_are_required(name: str, code: str) -> None:
    with pytest.raises(ValueError, match="template"):
        template_body(TO, name, code)


def test_read_receipt_body() -> None:
    assert read_receipt_body("wamid.X") == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.X",
    }
    assert read_receipt_body("wamid.X", typing_indicator=True)["typing_indicator"] == {
        "type": "text"
    }
    with pytest.raises(ValueError, match="message id is empty"):
        read_receipt_body("")
