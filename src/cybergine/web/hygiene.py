"""Input hygiene at the edge: what no route should ever see, refused once for all of them.

- JSON nested deeper than :data:`MAX_JSON_DEPTH`: Python's parser recurses, so a body of
  a thousand ``[`` raises RecursionError (a 500) wherever it is parsed, and what is
  parsed is later serialised again (JSONB, answers). Measured before parsing, by a scan
  that costs two ``bytes.count`` calls for the bodies the platform really receives.
- Characters PostgreSQL cannot store in text or jsonb, which would fail at the database
  with a 500: NUL (``\\u0000`` in JSON, ``%00`` in a query or form), and in JSON
  surrogates that pair with nothing (``\\ud800``: no UTF-8 can encode them). Refused
  with a 422 that names the field.

Pure functions first (no settings, no I/O), then the ASGI middleware that applies them to
every HTTP request's path, query string and JSON or form body.
"""

from __future__ import annotations

import itertools
import json
import re
from array import array
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cybergine.errors import CybergineError
from cybergine.web.problems import problem

# Deeper than any payload the platform takes (a WhatsApp webhook is 7 levels deep, an
# assistant's settings 4), far below the depth at which Python's parser gives up (~1000).
MAX_JSON_DEPTH = 64

NUL = "\x00"
# What no text column takes: NUL, and lone surrogates (a pair is one character once parsed).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Their traces in a JSON text: a NUL escape, a surrogate escape, a surrogate written as
# UTF-8 bytes (Python's parser lets those through). Only a body with one is parsed here
# to see; emoji, escaped as surrogate pairs by Meta, are the common case of a false alarm.
_TRACES = (b"\\u0000", b"\\ud", b"\\uD", b"\xed")

# A JSON string, unrolled so the regex engine never backtracks per character.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Brackets to +1 (opening) and -1 as a signed byte (closing); everything else deleted.
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[{]}"))


class InputRefused(CybergineError):
    """What the edge does not accept; routes may raise these too (see ``loads``,
    ``refuse_unstorable``)."""


class NestedTooDeep(InputRefused):
    type_slug = "json-too-deep"
    title = "JSON nested too deep"


class MalformedJson(InputRefused):
    type_slug = "malformed-json"
    title = "Malformed JSON"


class Unstorable(InputRefused):
    status = 422
    type_slug = "invalid-input"
    title = "Invalid input"


def _utf8(raw: bytes) -> bytes:
    """The JSON text as UTF-8, whatever encoding of RFC 8259 the parser would detect."""
    encoding = json.detect_encoding(raw)
    if encoding in ("utf-8", "utf-8-sig"):
        return raw
    return raw.decode(encoding, errors="replace").encode()


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays and objects deeper than ``limit``, without
    parsing it. Brackets inside strings do not count; malformed JSON may be misjudged
    either way, which is harmless: the parser refuses it next."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # the common case: cannot be deeper than its number of brackets
    structure = _JSON_STRING.sub(b"", _utf8(raw)).translate(_BRACKETS, _NOT_BRACKETS)
    return max(itertools.accumulate(array("b", structure)), default=0) > limit


def loads(raw: bytes | str, *, what: str = "The body") -> Any:
    """``json.loads`` that refuses deep nesting first and raises only :class:`InputRefused`
    (for JSON that does not arrive as a request body: a WebSocket frame, a form field)."""
    data = raw.encode(errors="surrogatepass") if isinstance(raw, str) else raw
    if json_depth_exceeds(data):
        raise NestedTooDeep(f"{what} is JSON nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:
        raise MalformedJson(f"{what} is not valid JSON: {error}") from None


def unstorable_in(value: Any, path: str = "") -> tuple[str, str] | None:
    """The path (``metadata.note``, ``items[2]``; ``"body"`` for the whole) of the first
    string, key or value, in parsed JSON holding a character no text column takes, and
    that character; None if there is none."""
    for where, text in _strings(value, path):
        found = _UNSTORABLE.search(text)
        if found is not None:
            return where or "body", found.group()
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, key
            yield from _strings(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def nul_in_form(raw: bytes) -> str | None:
    """The name of the first field of a query string or urlencoded form holding NUL."""
    if b"%00" not in raw and b"\x00" not in raw:
        return None
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if NUL in name or NUL in value:
            return name
    return None


def check_json_body(raw: bytes) -> None:
    """Refuse a JSON body nested too deep or holding what no text column takes; syntax
    errors are left to the parser of the route, which reports them in its own words."""
    if json_depth_exceeds(raw):
        raise NestedTooDeep(
            f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.", field="body"
        )
    if not any(trace in raw for trace in _TRACES) and _utf8(raw) is raw:
        return
    try:
        parsed = json.loads(raw)
    except ValueError:
        return
    # In C, before walking in Python: written back out, a NUL is an escape again and a
    # lone surrogate stays as it is; emoji, now single characters, are neither.
    written = json.dumps(parsed, ensure_ascii=False)
    if "\\u0000" not in written and _SURROGATE.search(written) is None:
        return
    found = unstorable_in(parsed)
    if found is not None:
        raise _unstorable_refused(*found)


def refuse_unstorable(fields: Mapping[str, Any]) -> None:
    """For text the edge does not see (the fields of a multipart upload): raise
    :class:`Unstorable` naming the first field, key or value, that holds NUL or a lone
    surrogate."""
    found = unstorable_in(dict(fields))
    if found is not None:
        raise _unstorable_refused(*found)


def _unstorable_refused(field: str, character: str = NUL, *, what: str = "The field") -> Unstorable:
    field = _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", field)
    if character == NUL:
        problem = "a NUL character (\\u0000), which is not accepted"
    else:
        problem = f"a lone surrogate (\\u{ord(character):04x}), which is not text"
    return Unstorable(f"{what} {field} contains {problem}.", field=field)


def _media_type(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media_type: str = value.decode("latin-1")
            return media_type.split(";", 1)[0].strip().lower()
    return ""


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


class InputHygieneMiddleware:
    """Applies the checks above to every HTTP request: its path and query string, and its
    body when that is JSON or an urlencoded form (read whole; the body size limit, outside
    this middleware, bounds it). Uploads (multipart) stream past untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if NUL in scope.get("path", ""):
                raise _unstorable_refused("path", what="The URL's")
            query = nul_in_form(scope.get("query_string", b""))
            if query is not None:
                raise _unstorable_refused(query, what="The query parameter")
            media_type = _media_type(scope)
            form = media_type == "application/x-www-form-urlencoded"
            if not (form or _is_json(media_type)):
                await self.app(scope, receive, send)
                return
            body, complete = await _read_body(receive)
            if not complete:
                return  # the client left before sending it all: no one to answer
            if form:
                field = nul_in_form(body)
                if field is not None:
                    raise _unstorable_refused(field)
            else:
                check_json_body(body)
        except InputRefused as refused:
            response = problem(
                refused.status,
                title=refused.title,
                detail=refused.detail,
                type_slug=refused.type_slug,
                **refused.extra,
            )
            await response(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole body, and whether it was read (False: the client left first)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True
