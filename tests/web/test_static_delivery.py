"""Static files, the widget script and the favicon as browsers and caches get them:
gzipped when asked, validated by a strong ETag, cached as long as their URL allows; and
``HEAD`` answered wherever ``GET`` is."""

from __future__ import annotations

import gzip
import re
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

import cybergine.channels.webchat as webchat
from cybergine.app import create_app
from cybergine.dashboard.templating import STATIC_DIR, static_assets
from cybergine.db.engine import Database
from cybergine.settings import Settings
from cybergine.web.assets import accepts_gzip
from cybergine.web.routing import iter_routes
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, make_organisation
from tests.support.server import LiveServer

WIDGET = Path(webchat.__file__).parent / "widget" / "widget.js"
GZIP = {"accept-encoding": "gzip"}
IDENTITY = {"accept-encoding": "identity"}


def _raw(client: httpx.Client, path: str, headers: dict[str, str]) -> httpx.Response:
    """The response with its body as sent (httpx would otherwise decompress it)."""
    with client.stream("GET", path, headers=headers) as response:
        response.raw_body = b"".join(response.iter_raw())  # type: ignore[attr-defined]
    return response


def test_gzip_when_asked_identity_when_not(live_server: LiveServer) -> None:
    source = (STATIC_DIR / "app.css").read_bytes()
    with live_server.client() as http:
        zipped = _raw(http, "/static/app.css", GZIP)
        plain = _raw(http, "/static/app.css", IDENTITY)
        refused = _raw(http, "/static/app.css", {"accept-encoding": "gzip;q=0, br"})
    assert zipped.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped.raw_body) == source  # type: ignore[attr-defined]
    assert int(zipped.headers["content-length"]) < len(source) / 2
    assert "content-encoding" not in plain.headers
    assert plain.raw_body == source  # type: ignore[attr-defined]
    assert "content-encoding" not in refused.headers
    for response in (zipped, plain):
        assert response.headers["vary"] == "Accept-Encoding"
        assert response.headers["content-type"] == "text/css; charset=utf-8"
    # Two representations, two strong validators.
    assert zipped.headers["etag"] != plain.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}(-gz)?"', zipped.headers["etag"])


@pytest.mark.parametrize(
    "path", ["/static/app.css", "/static/app.js", "/widget.js", "/favicon.ico"]
)
def test_an_unchanged_file_is_revalidated_with_an_empty_304(
    live_server: LiveServer, path: str
) -> None:
    with live_server.client() as http:
        for headers in (GZIP, IDENTITY):
            first = http.get(path, headers=headers)
            assert first.status_code == 200
            etag = first.headers["etag"]
            again = http.get(path, headers={**headers, "if-none-match": etag})
            assert again.status_code == 304, path
            assert again.content == b""
            assert again.headers["etag"] == etag
            assert again.headers["cache-control"] == first.headers["cache-control"]
            # Another version's tag (or a list of several) is not a match.
            stale = http.get(path, headers={**headers, "if-none-match": '"0000", "1111"'})
            assert stale.status_code == 200
            listed = http.get(path, headers={**headers, "if-none-match": f'"0000", W/{etag}'})
            assert listed.status_code == 304


def test_versioned_urls_are_kept_a_year_unversioned_ones_revalidated(
    live_server: LiveServer,
) -> None:
    versioned = static_assets.url_for("app.css")
    assert re.fullmatch(r"/static/app\.css\?v=[0-9a-f]{12}", versioned)
    with live_server.client() as http:
        long_lived = http.get(versioned)
        bare = http.get("/static/app.css")
        outdated = http.get("/static/app.css?v=000000000000")
    assert long_lived.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert bare.headers["cache-control"] == "public, no-cache"
    # An old page asking for an old version gets today's file, but not for a year.
    assert outdated.headers["cache-control"] == "public, no-cache"


def test_pages_link_their_assets_by_version(browser: Browser) -> None:
    page = browser.get("/login")
    assert page.status_code == 200
    for name in ("app.css", "app.js", "vendor/htmx-2.0.11.min.js", "favicon.svg"):
        assert static_assets.url_for(name) in page.text, name
    assert '<link rel="icon" href="/static/favicon.svg?v=' in page.text


def test_the_widget_script_is_compressed_and_cached_briefly(live_server: LiveServer) -> None:
    with live_server.client() as http:
        zipped = _raw(http, "/widget.js", GZIP)
        plain = _raw(http, "/widget.js", IDENTITY)
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped.raw_body) == WIDGET.read_bytes()  # type: ignore[attr-defined]
    assert plain.raw_body == WIDGET.read_bytes()  # type: ignore[attr-defined]
    for response in (zipped, plain):
        # Shops embed it at a fixed URL: a fix must reach their visitors within minutes.
        assert response.headers["cache-control"] == "public, max-age=300"
        assert response.headers["cross-origin-resource-policy"] == "cross-origin"
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"


def test_favicon(live_server: LiveServer) -> None:
    with live_server.client() as http:
        icon = http.get("/favicon.ico")
        svg = http.get(static_assets.url_for("favicon.svg"), headers=GZIP)
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file's header
    assert "content-encoding" not in icon.headers  # already compressed PNGs inside
    assert svg.status_code == 200
    assert svg.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in svg.content


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/%2e%2e/templating.py",
        "/static/vendor",
        "/static/.hidden",
        "/static/nothing.css",
        "/static/",
    ],
)
def test_nothing_outside_the_static_files_is_served(live_server: LiveServer, path: str) -> None:
    with live_server.client() as http:
        response = http.get(path)
    assert response.status_code == 404, path


def test_only_reads_are_answered(live_server: LiveServer) -> None:
    with live_server.client() as http:
        response = http.post("/static/app.css")
    assert response.status_code in (403, 405)  # CSRF refuses first, or the method is wrong


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("GZIP; Q=1.0", True),
        ("br, *", True),
        ("*;q=0", False),
        ("identity", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def _get_paths(settings: Settings) -> list[str]:
    """Every GET route the app serves, path parameters filled with something plausible."""
    app = create_app(settings, run_worker=False)
    paths = []
    for route in iter_routes(app.routes):
        if isinstance(route, APIRoute) and "GET" in (route.methods or set()):
            path = re.sub(r"\{[^}]*:path\}", "anything", route.path)
            paths.append(re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path))
    paths += ["/static/app.css"]
    assert len(paths) > 30  # the walk reaches the included routers
    return sorted(set(paths))


async def test_head_is_answered_wherever_get_is(
    settings: Settings, live_server: LiveServer, browser: Browser, database: Database
) -> None:
    """Signed in (pages answer 200) and signed out (they redirect), HEAD answers what GET
    does, headers included, with no body."""
    _, owner = await make_organisation(database)
    assert browser.sign_in(owner.email, PASSWORD).status_code == 303
    anonymous = live_server.client()
    try:
        for path in _get_paths(settings):
            for http in (browser.http, anonymous):
                # Headers only: a stream (the inbox's live updates) never ends.
                with http.stream("GET", path) as got:
                    pass
                head = http.head(path)
                assert head.status_code == got.status_code, path
                assert head.status_code != 405, path
                assert head.content == b"", path
                for name in ("content-type", "location", "etag", "cache-control"):
                    assert head.headers.get(name) == got.headers.get(name), (path, name)
    finally:
        anonymous.close()
