"""What the simulated Graph API checks in a request before accepting it, as Meta does:
required fields, types and Meta's length limits counted in characters. A refusal is code
100 with a ``details`` saying what is wrong, so a body our builders let through but Meta
would refuse fails in tests too. An interactive list's own fields answer with the codes
Meta's error table gives for a message's parameters: 131008 (required parameter missing)
and 131009 (parameter value not valid: over a length or count limit, ids repeated); so
does a media link that is not an http(s) URL."""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

_TEXT_LIMIT = 4096
_CAPTION_LIMIT = 1024
_CALLBACK_DATA_LIMIT = 512
_MESSAGE_TYPES = frozenset(
    {
        "text",
        "interactive",
        "template",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "reaction",
    }
)
_MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
_INTERACTIVE_TYPES = frozenset(
    {
        "button",
        "list",
        "cta_url",
        "flow",
        "product",
        "product_list",
        "catalog_message",
        "location_request_message",
        "address_message",
        "call_permission_request",
    }
)
_PHONE = re.compile(r"\+?[0-9][0-9 ()\-]{3,24}")


class Refusal(Exception):
    def __init__(
        self,
        details: str,
        *,
        code: int = 100,
        status: int = 400,
        message: str = "(#100) Invalid parameter",
        subcode: int | None = None,
    ) -> None:
        super().__init__(details)
        self.details = details
        self.code = code
        self.status = status
        self.message = message
        self.subcode = subcode


def check_message(
    body: Mapping[str, Any], templates: AbstractSet[tuple[str, str]]
) -> tuple[str, str]:
    """(to, type) of a message Meta would accept; raises Refusal otherwise. ``templates``:
    the (name, language) pairs registered (none registered: any template is known)."""
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type not in ("individual", "group"):
        raise Refusal(
            f"Param recipient_type must be one of {{INDIVIDUAL, GROUP}} - got {recipient_type!r}."
        )
    to = body.get("to")
    if not isinstance(to, str) or not to.strip():
        raise Refusal(
            "The parameter to is required.", message="(#100) The parameter to is required."
        )
    digits = re.sub(r"[^0-9]", "", to)
    if not _PHONE.fullmatch(to) or not 5 <= len(digits) <= 15:
        raise Refusal("Param to must be a valid WhatsApp user phone number.")
    kind = body.get("type", "text")
    if kind not in _MESSAGE_TYPES:
        raise Refusal(f"Param type must be one of {sorted(_MESSAGE_TYPES)} - got {kind!r}.")
    content = body.get(kind)
    if kind == "contacts":
        if not isinstance(content, list) or not content:
            raise Refusal("The parameter contacts is required.")
    elif not isinstance(content, Mapping):
        raise Refusal(
            f"The parameter {kind} is required.",
            message=f"(#100) The parameter {kind} is required.",
        )
    context = body.get("context")
    if context is not None and not (
        isinstance(context, Mapping) and nonempty(context.get("message_id"))
    ):
        raise Refusal("Param context['message_id'] is required.")
    callback = body.get("biz_opaque_callback_data")
    if callback is not None:
        limit_text("biz_opaque_callback_data", callback, _CALLBACK_DATA_LIMIT)
    if kind == "text":
        assert isinstance(content, Mapping)
        limit_text("text['body']", content.get("body"), _TEXT_LIMIT)
        if not isinstance(content.get("preview_url", False), bool):
            raise Refusal("Param text['preview_url'] must be a boolean.")
    elif kind == "interactive":
        assert isinstance(content, Mapping)
        check_interactive(content)
    elif kind == "template":
        assert isinstance(content, Mapping)
        check_template(content, templates)
    elif kind in _MEDIA_TYPES:
        assert isinstance(content, Mapping)
        if not (nonempty(content.get("id")) or nonempty(content.get("link"))):
            raise Refusal(f"Param {kind} must contain either id or link.")
        link = content.get("link")
        if isinstance(link, str) and not re.match(r"https?://[^\s/]+", link, re.IGNORECASE):
            raise _invalid(f"Param {kind}['link'] must be an HTTP or HTTPS URL.")
        if "caption" in content:
            if kind in ("audio", "sticker"):
                raise Refusal(f"Param {kind}['caption'] is not supported.")
            limit_text(f"{kind}['caption']", content["caption"], _CAPTION_LIMIT)
    elif kind == "reaction":
        assert isinstance(content, Mapping)
        if not nonempty(content.get("message_id")) or not isinstance(content.get("emoji"), str):
            raise Refusal("Param reaction requires message_id and emoji.")
    elif kind == "location":
        assert isinstance(content, Mapping)
        for key in ("latitude", "longitude"):
            if not isinstance(content.get(key), int | float | str):
                raise Refusal(f"The parameter location['{key}'] is required.")
    return to, kind


def check_template(template: Mapping[str, Any], templates: AbstractSet[tuple[str, str]]) -> None:
    name = template.get("name")
    language = template.get("language")
    code = language.get("code") if isinstance(language, Mapping) else None
    if not nonempty(name):
        raise Refusal("The parameter template['name'] is required.")
    if not nonempty(code):
        raise Refusal("The parameter template['language']['code'] is required.")
    components = template.get("components")
    if components is not None and not (
        isinstance(components, list) and all(isinstance(c, Mapping) for c in components)
    ):
        raise Refusal("Param template['components'] must be an array of objects.")
    if templates and (name, code) not in templates:
        raise Refusal(
            f"template name ({name}) does not exist in {code}",
            code=132001,
            status=404,
            message="(#132001) Template name does not exist in the translation",
        )


def check_product(body: Mapping[str, Any]) -> None:
    product = body.get("messaging_product")
    if product is None:
        raise Refusal(
            "The parameter messaging_product is required.",
            message="(#100) The parameter messaging_product is required.",
        )
    if product != "whatsapp":
        raise Refusal(f"Param messaging_product must be one of {{WHATSAPP}} - got {product!r}.")


def check_interactive(interactive: Mapping[str, Any]) -> None:
    kind = interactive.get("type")
    if kind not in _INTERACTIVE_TYPES:
        raise Refusal(f"Param interactive['type'] must be one of {sorted(_INTERACTIVE_TYPES)}.")
    header = interactive.get("header")
    if header is not None:
        if not isinstance(header, Mapping):
            raise Refusal("Param interactive['header'] must be an object.")
        if header.get("type") == "text":
            limit_text("interactive['header']['text']", header.get("text"), 60)
    footer = interactive.get("footer")
    if footer is not None:
        limit_text("interactive['footer']['text']", get_key(footer, "text"), 60)
    action = interactive.get("action")
    if not isinstance(action, Mapping):
        raise Refusal("The parameter interactive['action'] is required.")
    if kind == "button":
        limit_text("interactive['body']['text']", get_key(interactive.get("body"), "text"), 1024)
        _check_buttons(action.get("buttons"))
    elif kind == "list":
        _limit_value("interactive['body']['text']", get_key(interactive.get("body"), "text"), 4096)
        _limit_value("interactive['action']['button']", action.get("button"), 20)
        if header is not None and get_key(header, "type") != "text":
            raise _invalid("Param interactive['header']['type'] must be text in a list message.")
        _check_sections(action.get("sections"))


def _check_buttons(buttons: Any) -> None:
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise Refusal("Param interactive['action']['buttons'] must have 1 to 3 buttons.")
    ids, titles = [], []
    for i, button in enumerate(buttons):
        where = f"interactive['action']['buttons'][{i}]"
        if get_key(button, "type") != "reply":
            raise Refusal(f"Param {where}['type'] must be one of {{REPLY}}.")
        reply = get_key(button, "reply")
        limit_text(f"{where}['reply']['id']", get_key(reply, "id"), 256)
        limit_text(f"{where}['reply']['title']", get_key(reply, "title"), 20)
        ids.append(get_key(reply, "id"))
        titles.append(get_key(reply, "title"))
    if len(set(ids)) != len(ids) or len(set(titles)) != len(titles):
        raise Refusal("Button ids and titles must be unique.")


def _check_sections(sections: Any) -> None:
    if not isinstance(sections, list) or not sections:
        raise _missing("interactive['action']['sections']")
    if len(sections) > 10:
        raise _invalid(f"Too many sections: {len(sections)}, at most 10.")
    row_ids: list[Any] = []
    for s, section in enumerate(sections):
        where = f"interactive['action']['sections'][{s}]"
        if len(sections) > 1 or get_key(section, "title") is not None:
            _limit_value(f"{where}['title']", get_key(section, "title"), 24)
        rows = get_key(section, "rows")
        if not isinstance(rows, list) or not rows:
            raise _missing(f"{where}['rows']")
        for r, row in enumerate(rows):
            _limit_value(f"{where}['rows'][{r}]['id']", get_key(row, "id"), 200)
            _limit_value(f"{where}['rows'][{r}]['title']", get_key(row, "title"), 24)
            if get_key(row, "description") is not None:
                _limit_value(
                    f"{where}['rows'][{r}]['description']", get_key(row, "description"), 72
                )
            row_ids.append(get_key(row, "id"))
    if len(row_ids) > 10:
        raise _invalid(f"Total row count exceeded: {len(row_ids)} rows, at most 10.")
    if len(set(row_ids)) != len(row_ids):
        raise _invalid("Row ids must be unique.")


def _limit_value(where: str, value: Any, limit: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _missing(where)
    if len(value) > limit:
        raise _invalid(f"Param {where} must be at most {limit} characters long.")


def _missing(where: str) -> Refusal:
    return Refusal(
        f"The parameter {where} is required.",
        code=131008,
        message="(#131008) Required parameter is missing",
    )


def _invalid(details: str) -> Refusal:
    return Refusal(details, code=131009, message="(#131009) Parameter value is not valid")


def limit_text(where: str, value: Any, limit: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise Refusal(f"The parameter {where} is required.")
    if len(value) > limit:
        raise Refusal(f"Param {where} must be at most {limit} characters long.")


def get_key(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def nonempty(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())
