"""What the platform answers in JSON is one caller's own: no browser or cache in between
may keep a copy."""

from __future__ import annotations

from cybergine.db.engine import Database
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, make_organisation, make_organisation_with_key
from tests.support.server import LiveServer


async def test_authenticated_api_answers_are_not_stored(
    live_server: LiveServer, database: Database
) -> None:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        for path in ("/api/v1/organisation", "/api/v1/members", "/api/v1/api-keys"):
            response = api.get(path)
            assert response.status_code == 200, path
            assert response.headers["cache-control"] == "no-store", path
        missing = api.get("/api/v1/conversations/00000000-0000-0000-0000-000000000000")
        script = api.get("/widget.js")
    assert script.headers["cache-control"] == "public, max-age=300"  # a route's own choice
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.headers["cache-control"] == "no-store"


async def test_json_fetched_by_a_signed_in_browser_is_not_stored(
    browser: Browser, database: Database
) -> None:
    _, owner = await make_organisation(database)
    assert browser.sign_in(owner.email, PASSWORD).status_code == 303
    response = browser.http.get("/api/v1/organisation", headers={"accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
