"""Request bodies for ``POST /{phone-number-id}/messages`` of the WhatsApp Cloud API.

Pure: no settings, no I/O. Each builder returns the JSON object Meta documents, checked
against Meta's limits first, so a body that would be refused with error 100 is refused here
with a ``ValueError`` that says which limit and by how much. Messages never quote the text
itself: an assistant's reply is customer-facing content and stays out of logs.

Decisions:
- Lengths are counted in characters (Unicode code points, ``len``), as Meta counts them,
  never in UTF-8 bytes: 4096 emoji are one text message.
- ``split_text`` cuts where a reader would: between paragraphs, else between lines, else
  after a sentence, else between words. Only a single word longer than the limit is cut
  inside, and never inside a grapheme cluster it can recognise (combining marks, emoji
  joined with ZWJ, skin tones, flags). The whitespace at a cut is dropped, nothing else
  is: the parts, in order, are the text with only those runs of whitespace removed.
- Empty or whitespace-only text is an error in a body (Meta refuses it) and ``split_text``
  gives no parts for it (there is nothing to send).
- Every body names ``messaging_product`` and ``recipient_type: individual``; ``reply_to``
  becomes ``context.message_id`` (the reply is shown quoting that message) and
  ``callback_data`` becomes ``biz_opaque_callback_data``, which Meta echoes in the status
  webhooks of this message (at most 512 characters).
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "BUTTON_BODY_LIMIT",
    "CALLBACK_DATA_LIMIT",
    "CAPTION_LIMIT",
    "LIST_BODY_LIMIT",
    "LIST_BUTTON_LIMIT",
    "ROW_DESCRIPTION_LIMIT",
    "ROW_TITLE_LIMIT",
    "TEXT_LIMIT",
    "buttons_body",
    "image_body",
    "list_body",
    "read_receipt_body",
    "shorten",
    "split_text",
    "template_body",
    "text_body",
]

TEXT_LIMIT = 4096  # text.body
BUTTON_BODY_LIMIT = 1024  # interactive button: body.text
LIST_BODY_LIMIT = 4096  # interactive list: body.text
HEADER_LIMIT = 60  # interactive header.text
FOOTER_LIMIT = 60  # interactive footer.text
MAX_BUTTONS = 3
BUTTON_TITLE_LIMIT = 20
BUTTON_ID_LIMIT = 256
LIST_BUTTON_LIMIT = 20  # the label of the button that opens the list
MAX_SECTIONS = 10
MAX_ROWS = 10  # across all sections
SECTION_TITLE_LIMIT = 24
ROW_ID_LIMIT = 200
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
CALLBACK_DATA_LIMIT = 512
CAPTION_LIMIT = 1024  # image, video and document captions
TEMPLATE_NAME_LIMIT = 512


# --- splitting long text -------------------------------------------------------------

_PARAGRAPH, _LINE, _SENTENCE, _WORD = range(4)

_WHITESPACE = re.compile(r"\s+")
_LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028]")
# CJK full stops, exclamation and question marks (fullwidth and halfwidth), which are
# not followed by a space; Arabic question mark, Urdu full stop, Devanagari danda.
_CJK_ENDS = "\u3002\uff01\uff1f\uff61"
_SENTENCE_END = frozenset(".!?\u2026\u061f\u06d4\u0964" + _CJK_ENDS)
# Closing quotes and brackets that may follow the end of a sentence.
_CLOSING = "\"')]}\u00bb\u201d\u2019\u300d\u300f"
_CLOSERS = frozenset(_CLOSING)
_UNSPACED_SENTENCE_END = re.compile(f"[{_CJK_ENDS}][{re.escape(_CLOSING)}]*(?=\\S)")
_ZWJ = "\u200d"


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """``text`` as consecutive parts of at most ``limit`` characters each."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if not text.strip():
        return []
    boundaries = _boundaries(text)
    starts = [start for start, _, _ in boundaries]
    parts: list[str] = []
    pos = 0
    leading = len(text) - len(text.lstrip())
    if leading >= limit:  # indentation alone would fill a part: it is a cut of its own
        pos = leading
    while len(text) - pos > limit:
        window_end = pos + limit
        best: tuple[int, int, int] | None = None  # (level, start, end)
        lo = bisect.bisect_right(starts, pos)
        hi = bisect.bisect_right(starts, window_end)
        for start, end, level in boundaries[lo:hi]:
            # The latest boundary of the best level: the fewest, fullest parts.
            if best is None or level < best[0] or (level == best[0] and start > best[1]):
                best = (level, start, end)
        if best is not None:
            _, cut, resume = best
        else:
            cut = resume = _grapheme_safe_cut(text, pos, window_end)
        parts.append(text[pos:cut])
        pos = resume
    if pos < len(text):
        parts.append(text[pos:])
    return parts


def _boundaries(text: str) -> list[tuple[int, int, int]]:
    """Every place text may be cut, as (start, end, level), sorted by start. The
    characters from start to end (whitespace, or nothing) are dropped at the cut."""
    found = []
    for match in _WHITESPACE.finditer(text):
        run, start = match.group(), match.start()
        breaks = len(_LINE_BREAK.findall(run))
        if breaks >= 2 or "\u2029" in run:
            level = _PARAGRAPH
        elif breaks == 1:
            level = _LINE
        elif _ends_sentence(text, start):
            level = _SENTENCE
        else:
            level = _WORD
        found.append((start, match.end(), level))
    found.extend((m.end(), m.end(), _SENTENCE) for m in _UNSPACED_SENTENCE_END.finditer(text))
    found.sort()
    return found


def _ends_sentence(text: str, index: int) -> bool:
    """Whether the text just before ``index`` ends a sentence (closing quotes allowed)."""
    i = index - 1
    while i >= 0 and text[i] in _CLOSERS:
        i -= 1
    return i >= 0 and text[i] in _SENTENCE_END


def _grapheme_safe_cut(text: str, pos: int, cut: int) -> int:
    """``cut``, moved back while it would split what is displayed as one character."""
    candidate = cut
    while candidate > pos + 1 and _joined(text, candidate):
        candidate -= 1
    return cut if _joined(text, candidate) else candidate  # one huge cluster: cut anyway


def _joined(text: str, i: int) -> bool:
    """Whether ``text[i - 1]`` and ``text[i]`` belong to one grapheme cluster."""
    before, after = text[i - 1], text[i]
    if before == "\r" and after == "\n":
        return True
    if before == _ZWJ or after == _ZWJ:
        return True
    if unicodedata.category(after) in ("Mn", "Mc", "Me"):  # combining, variation selectors
        return True
    if 0x1F3FB <= ord(after) <= 0x1F3FF or 0xE0020 <= ord(after) <= 0xE007F:  # skin, tags
        return True
    if _regional(before) and _regional(after):
        # Flags are pairs of regional indicators: count the run to find the pairing.
        run = 0
        j = i - 1
        while j >= 0 and _regional(text[j]):
            run += 1
            j -= 1
        return run % 2 == 1
    return False


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: whole when it fits, else cut after the
    last word that fits (or, for one long word, at a character that is not half of what
    is displayed as one) and ended with "…"."""
    text = text.strip()
    if len(text) <= limit:
        return text
    room = limit - 1  # for the ellipsis
    space = max(text.rfind(" ", 0, room + 1), text.rfind("\n", 0, room + 1))
    cut = space if space >= room // 2 else _grapheme_safe_cut(text, 0, room)
    return text[:cut].rstrip() + "\u2026"


# --- bodies ---------------------------------------------------------------------------


def text_body(
    to: str,
    text: str,
    *,
    preview_url: bool = False,
    reply_to: str | None = None,
    callback_data: str | None = None,
) -> dict[str, Any]:
    """A text message (split longer text with ``split_text`` first)."""
    _check_text("text", text, TEXT_LIMIT)
    return _envelope(
        to,
        "text",
        {"preview_url": preview_url, "body": text},
        reply_to=reply_to,
        callback_data=callback_data,
    )


def buttons_body(
    to: str,
    text: str,
    buttons: Sequence[tuple[str, str]],
    *,
    header: str | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
    callback_data: str | None = None,
) -> dict[str, Any]:
    """An interactive message with up to three reply buttons, given as (id, title).
    The customer's tap comes back as an ``interactive.button_reply`` with that id."""
    _check_text("body text", text, BUTTON_BODY_LIMIT)
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        raise ValueError(f"{len(buttons)} buttons given; WhatsApp allows 1 to {MAX_BUTTONS}")
    items = []
    for n, (button_id, title) in enumerate(buttons, start=1):
        _check_text(f"button {n} id", button_id, BUTTON_ID_LIMIT)
        _check_text(f"button {n} title", title, BUTTON_TITLE_LIMIT)
        items.append({"type": "reply", "reply": {"id": button_id, "title": title}})
    _check_unique("button ids", [b for b, _ in buttons])
    _check_unique("button titles", [t for _, t in buttons])
    interactive: dict[str, Any] = {"type": "button"}
    interactive.update(_decorations(header, footer))
    interactive["body"] = {"text": text}
    interactive["action"] = {"buttons": items}
    return _envelope(to, "interactive", interactive, reply_to=reply_to, callback_data=callback_data)


def list_body(
    to: str,
    text: str,
    button_label: str,
    sections: Sequence[tuple[str, Sequence[tuple[str, str, str | None]]]],
    *,
    header: str | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
    callback_data: str | None = None,
) -> dict[str, Any]:
    """An interactive list: ``button_label`` opens a menu of sections (title, rows), each
    row (id, title, description or None). At most 10 rows in all. A section title may be
    empty only when there is a single section (Meta requires titles otherwise)."""
    _check_text("body text", text, LIST_BODY_LIMIT)
    _check_text("list button label", button_label, LIST_BUTTON_LIMIT)
    if not 1 <= len(sections) <= MAX_SECTIONS:
        raise ValueError(f"{len(sections)} sections given; WhatsApp allows 1 to {MAX_SECTIONS}")
    total = sum(len(rows) for _, rows in sections)
    if not 1 <= total <= MAX_ROWS:
        raise ValueError(f"{total} rows given; WhatsApp allows 1 to {MAX_ROWS} in all sections")
    built = []
    row_ids: list[str] = []
    for s, (title, rows) in enumerate(sections, start=1):
        section: dict[str, Any] = {}
        if title or len(sections) > 1:
            _check_text(f"section {s} title", title, SECTION_TITLE_LIMIT)
            section["title"] = title
        if not rows:
            raise ValueError(f"section {s} has no rows")
        section_rows = []
        for r, (row_id, row_title, description) in enumerate(rows, start=1):
            where = f"section {s} row {r}"
            _check_text(f"{where} id", row_id, ROW_ID_LIMIT)
            _check_text(f"{where} title", row_title, ROW_TITLE_LIMIT)
            row = {"id": row_id, "title": row_title}
            if description is not None:
                _check_text(f"{where} description", description, ROW_DESCRIPTION_LIMIT)
                row["description"] = description
            section_rows.append(row)
            row_ids.append(row_id)
        section["rows"] = section_rows
        built.append(section)
    _check_unique("row ids", row_ids)
    interactive: dict[str, Any] = {"type": "list"}
    interactive.update(_decorations(header, footer))
    interactive["body"] = {"text": text}
    interactive["action"] = {"button": button_label, "sections": built}
    return _envelope(to, "interactive", interactive, reply_to=reply_to, callback_data=callback_data)


def image_body(
    to: str,
    link: str,
    *,
    caption: str | None = None,
    reply_to: str | None = None,
    callback_data: str | None = None,
) -> dict[str, Any]:
    """An image by its public http(s) link (Meta fetches it), with an optional caption."""
    _check_text("image link", link, 2048)
    if not link.lower().startswith(("https://", "http://")):
        raise ValueError("image link must be an http(s) URL")
    image: dict[str, Any] = {"link": link}
    if caption is not None:
        _check_text("caption", caption, CAPTION_LIMIT)
        image["caption"] = caption
    return _envelope(to, "image", image, reply_to=reply_to, callback_data=callback_data)


def template_body(
    to: str,
    name: str,
    language_code: str,
    components: Sequence[Mapping[str, Any]] | None = None,
    *,
    reply_to: str | None = None,
    callback_data: str | None = None,
) -> dict[str, Any]:
    """A pre-approved template (the only kind of message allowed outside the 24-hour
    customer service window). ``components`` are passed as Meta documents them, e.g.
    ``[{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}]``."""
    _check_text("template name", name, TEMPLATE_NAME_LIMIT)
    _check_text("template language code", language_code, 15)
    template: dict[str, Any] = {"name": name, "language": {"code": language_code}}
    if components:
        template["components"] = [dict(component) for component in components]
    return _envelope(to, "template", template, reply_to=reply_to, callback_data=callback_data)


def read_receipt_body(message_id: str, *, typing_indicator: bool = False) -> dict[str, Any]:
    """Marks an inbound message (and the ones before it) as read: two blue ticks. With
    ``typing_indicator`` the customer also sees "typing…" until our reply or 25 seconds."""
    _check_text("message id", message_id, 512)
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": message_id,
    }
    if typing_indicator:
        body["typing_indicator"] = {"type": "text"}
    return body


# --- shared ---------------------------------------------------------------------------


def _envelope(
    to: str,
    kind: str,
    content: dict[str, Any],
    *,
    reply_to: str | None,
    callback_data: str | None,
) -> dict[str, Any]:
    if not isinstance(to, str) or not to.strip():
        raise ValueError("the recipient (to) is required")
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
    }
    if reply_to is not None:
        _check_text("reply_to message id", reply_to, 512)
        body["context"] = {"message_id": reply_to}
    body["type"] = kind
    body[kind] = content
    if callback_data is not None:
        _check_text("callback data", callback_data, CALLBACK_DATA_LIMIT)
        body["biz_opaque_callback_data"] = callback_data
    return body


def _decorations(header: str | None, footer: str | None) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    if header is not None:
        _check_text("header", header, HEADER_LIMIT)
        parts["header"] = {"type": "text", "text": header}
    if footer is not None:
        _check_text("footer", footer, FOOTER_LIMIT)
        parts["footer"] = {"text": footer}
    return parts


def _check_text(what: str, value: object, limit: int) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} is empty")
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value)} characters; WhatsApp allows at most {limit}")


def _check_unique(what: str, values: list[str]) -> None:
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"{what} must be unique; {len(duplicates)} repeated")
