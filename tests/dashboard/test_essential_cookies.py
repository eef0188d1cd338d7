"""Policy §16: the dashboard sets essential cookies only (the sign-in session and the
CSRF token), each HttpOnly and SameSite, Secure behind HTTPS, and says so where people
sign in and sign up."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import httpx

from cybergine.accounts.auth import ANONYMOUS_CSRF_COOKIE, SESSION_COOKIE
from cybergine.app import create_app
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, make_organisation
from tests.support.server import LiveServer

ESSENTIAL = {SESSION_COOKIE, ANONYMOUS_CSRF_COOKIE}
PAGES = ("/", "/inbox", "/assistants", "/knowledge", "/team", "/audit", "/settings", "/account")


def _set_cookies(response: httpx.Response) -> SimpleCookie:
    cookies: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        cookies.load(header)
    return cookies


async def test_only_the_session_and_csrf_cookies_are_ever_set(
    browser: Browser, database: Database
) -> None:
    _, owner = await make_organisation(database)
    responses = [browser.get("/login"), browser.get("/signup")]
    for page in responses:
        assert page.status_code == 200
        assert "no analytics, advertising or tracking cookies" in page.text
    responses.append(browser.sign_in(owner.email, PASSWORD))
    assert browser.session_cookie
    for path in PAGES:
        response = browser.get(path)
        assert response.status_code == 200, path
        responses.append(response)
    responses.append(browser.post("/logout", csrf_from="/"))

    seen: set[str] = set()
    for response in responses:
        for name, morsel in _set_cookies(response).items():
            seen.add(name)
            assert name in ESSENTIAL, f"{response.request.url} set {name}"
            if morsel["max-age"] == "0":
                continue  # signing out removes it: nothing is stored
            assert morsel["httponly"], name
            assert morsel["samesite"].lower() == "lax", name
            assert not morsel["secure"], name  # plain HTTP here: a Secure cookie is lost
    assert seen == ESSENTIAL


async def test_behind_https_the_cookies_are_secure(settings: Settings, database: Database) -> None:
    _, owner = await make_organisation(database)
    secure = settings.model_copy(update={"behind_https": True})
    with (
        LiveServer(create_app(secure, run_worker=False)) as server,
        httpx.Client(base_url=server.url, headers={"accept": "text/html"}) as http,
    ):
        page = http.get("/login")
        csrf_cookie = _set_cookies(page)[ANONYMOUS_CSRF_COOKIE]
        match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert match
        # The client keeps Secure cookies to HTTPS, as a browser does: sent by hand here.
        signed_in = http.post(
            "/login",
            data={"email": owner.email, "password": PASSWORD, "next": "/", "csrf_token": match[1]},
            headers={"cookie": f"{ANONYMOUS_CSRF_COOKIE}={csrf_cookie.value}"},
        )
        assert signed_in.status_code == 303, signed_in.text
        cookies = {**_set_cookies(page), **_set_cookies(signed_in)}
    assert SESSION_COOKIE in cookies
    for name, morsel in cookies.items():
        assert name in ESSENTIAL
        assert morsel["secure"], name
        assert morsel["httponly"], name
