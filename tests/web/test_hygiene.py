"""Input hygiene at the edge (``web/hygiene.py``): deep JSON and NUL characters refused
once for every route, with an answer that says which field; what passes reaches the
route byte for byte. Then the hostile inputs the fuzzing of main turned into 500s."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request

from cybergine.app import create_app
from cybergine.db.engine import Database
from cybergine.settings import Settings
from cybergine.web.hygiene import (
    MAX_JSON_DEPTH,
    InputRefused,
    Unstorable,
    json_depth_exceeds,
    loads,
    nul_in_form,
    refuse_unstorable,
    unstorable_in,
)
from tests.support.factories import make_organisation_with_key
from tests.support.server import LiveServer


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_depth_is_measured_outside_strings() -> None:
    assert not json_depth_exceeds(_nested(MAX_JSON_DEPTH))
    assert json_depth_exceeds(_nested(MAX_JSON_DEPTH + 1))
    assert json_depth_exceeds(b'{"a":' * 100 + b"1" + b"}" * 100)
    inside = b'{"text": "' + b"[" * 500 + b'", "more": "\\"' + b"{" * 500 + b'"}'
    assert not json_depth_exceeds(inside)
    # JSON in UTF-16, which Python's parser also reads.
    assert json_depth_exceeds(_nested(100).decode().encode("utf-16"))


def test_loads_never_raises_anything_but_a_refusal() -> None:
    assert loads('{"type": "ping"}') == {"type": "ping"}
    for hostile in (_nested(100_000), b"{not json", b"\xff\xfe\x00", "[" * 2000):
        with pytest.raises(InputRefused):
            loads(hostile)


def test_what_no_text_column_takes_is_found_with_its_path() -> None:
    assert unstorable_in({"a": [{"b": "x"}, {"c": "y\x00"}]}) == ("a[1].c", "\x00")
    assert unstorable_in({"k\x00": 1}) == ("k\x00", "\x00")
    assert unstorable_in("\x00") == ("body", "\x00")
    assert unstorable_in({"a": "\ud800"}) == ("a", "\ud800")
    assert unstorable_in({"a": ["fine", 1, None, 2.5, "\U0001f600"]}) is None
    with pytest.raises(Unstorable) as refused:
        refuse_unstorable({"title": "ok", "collection": "a\x00"})
    assert (refused.value.status, refused.value.extra) == (422, {"field": "collection"})
    assert nul_in_form(b"q=a%00b&x=1") == "q"
    assert nul_in_form(b"q=ab&x=%2500") is None  # an escaped percent sign


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    app: FastAPI = create_app(settings, run_worker=False)

    @app.post("/api/v1/probe/echo")
    async def echo(request: Request) -> dict[str, str]:
        return {"received": (await request.body()).decode("latin-1")}

    with LiveServer(app) as live:
        yield live


def test_what_passes_reaches_the_route_unchanged(server: LiveServer) -> None:
    body = '{"text": "caf\\u00e9 \\\\u0000 [[[", "deep": ' + "[" * 20 + "]" * 20 + "}"
    with server.client() as client:
        response = client.post(
            "/api/v1/probe/echo", content=body, headers={"content-type": "application/json"}
        )
        form = client.post("/api/v1/probe/echo", data={"a": "b%00"})  # "%2500" on the wire
        upload = client.post("/api/v1/probe/echo", files={"f": ("x.bin", b"\x00\x01")})
    assert response.status_code == 200
    assert response.json() == {"received": body}
    assert form.json() == {"received": "a=b%2500"}
    assert "\x00\x01" in upload.json()["received"]  # files are not text: untouched


@pytest.mark.parametrize(
    ("content", "content_type", "status", "field"),
    [
        (_nested(1_000), "application/json", 400, "body"),
        (b'{"a": {"b": ["x", "y\\u0000"]}}', "application/json", 422, "a.b[1]"),
        (b'{"a": "\\u0000"}', "application/merge-patch+json; charset=utf-8", 422, "a"),
        (b"name=a%00b", "application/x-www-form-urlencoded", 422, "name"),
        (b'{"a": ["\\udc00"]}', "application/json", 422, "a[0]"),
        (b'{"a": "\xed\xa0\x80"}', "application/json", 422, "a"),
    ],
)
def test_deep_json_and_nul_characters_are_refused_clearly(
    server: LiveServer, content: bytes, content_type: str, status: int, field: str
) -> None:
    with server.client() as client:
        response = client.post(
            "/api/v1/probe/echo", content=content, headers={"content-type": content_type}
        )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field


def test_nul_in_the_query_or_path_is_refused(server: LiveServer) -> None:
    with server.client() as client:
        query = client.get("/api/v1/conversations", params={"q": "a\x00"})
        path = client.get("/api/v1/knowledge/documents/a%00b")
    assert query.status_code == 422
    assert query.json()["field"] == "q"
    assert path.status_code == 422


# --- What fuzzing the API of main found: authenticated 500s ---------------------------


@pytest.fixture
async def api(live_server: LiveServer, database: Database) -> Iterator[httpx.Client]:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/knowledge/documents",
            {"text": "Hi", "metadata": {"note": "\u0000"}},
            "metadata.note",
        ),
        ("/api/v1/knowledge/documents", {"text": "Hi\u0000there"}, "text"),
        ("/api/v1/knowledge/qa", {"question": "Why?", "answer": "A\u0000"}, "answer"),
        ("/api/v1/assistants", {"name": "Mia\u0000"}, "name"),
        ("/api/v1/assistants", {"name": "Mia\ud800"}, "name"),
    ],
)
def test_nul_and_lone_surrogates_in_text_and_jsonb_fields_are_a_422_naming_the_field(
    api: httpx.Client, path: str, body: dict[str, object], field: str
) -> None:
    content = json.dumps(body).encode()  # as escapes: \u0000, \ud800
    response = api.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text  # was: 500 from PostgreSQL
    assert response.json()["field"] == field


def test_integers_beyond_the_column_are_a_422(api: httpx.Client) -> None:
    response = api.get("/api/v1/audit-events", params={"before_seq": 2**63})
    assert response.status_code == 422  # was: 500 (bigint out of range)
    assert api.get("/api/v1/audit-events", params={"before_seq": 2**63 - 1}).status_code == 200


@pytest.mark.parametrize(
    "origin", ["http://[::1", "https://x:99999", "https://shop.example:abc", "https://" + "a" * 300]
)
def test_unparsable_allowed_origins_are_a_422(api: httpx.Client, origin: str) -> None:
    response = api.post("/api/v1/assistants", json={"name": "Mia", "allowed_origins": [origin]})
    assert response.status_code == 422, response.text  # was: 500
    assert response.json()["field"] == "allowed_origins"


@pytest.mark.parametrize(
    ("filename", "fallback", "encoded"),
    [
        ("Préstamo año.txt", "Prstamo ao.txt", "Pr%C3%A9stamo%20a%C3%B1o.txt"),
        ("договор.txt", ".txt", "%D0%B4%D0%BE%D0%B3%D0%BE%D0%B2%D0%BE%D1%80.txt"),
        ("報告.md", ".md", "%E5%A0%B1%E5%91%8A.md"),
    ],
)
def test_downloads_keep_any_file_name(
    api: httpx.Client, filename: str, fallback: str, encoded: str
) -> None:
    uploaded = api.post(
        "/api/v1/knowledge/documents",
        files={"file": (filename, io.BytesIO(b"Returns are free for 30 days."), "text/plain")},
    )
    assert uploaded.status_code == 202, uploaded.text
    response = api.get(f"/api/v1/knowledge/documents/{uploaded.json()['id']}/file")
    assert response.status_code == 200  # was: 500 (the header is not Latin-1)
    assert response.headers["content-disposition"] == (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    )
    assert response.content == b"Returns are free for 30 days."
