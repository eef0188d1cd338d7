"""Every state-changing dashboard route refuses a request without a valid CSRF token,
and pages render hostile strings as text."""

from __future__ import annotations

import re
import uuid
from http.cookies import SimpleCookie

from cybergine.app import create_app
from cybergine.db.engine import Database
from cybergine.settings import Settings
from cybergine.web.routing import api_routes
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, make_organisation, make_user
from tests.support.server import LiveServer


async def test_every_unsafe_dashboard_route_requires_the_csrf_token(
    settings: Settings, database: Database
) -> None:
    _, owner = await make_organisation(database)
    app = create_app(settings, run_worker=False)
    with LiveServer(app) as server:
        browser = Browser(server.url)
        try:
            assert browser.sign_in(owner.email, PASSWORD).status_code == 303
            checked = []
            for route in api_routes(app.routes):
                # API keys, webhook signatures, widget tokens and (the Shopify admin's
                # embedded app) App Bridge session tokens authenticate those; no cookie
                # is read.
                if route.path.startswith(
                    ("/api/", "/webhooks/", "/widget/", "/shopify/api/")
                ) or not (route.methods & {"POST", "PUT", "PATCH", "DELETE"}):
                    continue
                path = re.sub(r"{\w+}", lambda _: str(uuid.uuid4()), route.path)
                for method in route.methods & {"POST", "PUT", "PATCH", "DELETE"}:
                    response = browser.http.request(method, path, data={"csrf_token": "forged"})
                    checked.append(route.path)
                    # 403 (CSRF) — or 410 for links whose token is checked first and is
                    # not valid anyway; never a success or a redirect.
                    assert response.status_code in {403, 410}, (
                        method,
                        route.path,
                        response.status_code,
                    )
            assert browser.get("/").status_code == 200  # still signed in: nothing happened
        finally:
            browser.close()
    assert {
        "/login",
        "/signup",
        "/logout",
        "/settings",
        "/team/invite",
        "/settings/api-keys",
    } <= set(checked)


async def test_cookies_are_secure_behind_https(settings: Settings, database: Database) -> None:
    user = await make_user(database)
    app = create_app(settings.model_copy(update={"behind_https": True}), run_worker=False)
    with LiveServer(app) as server, server.client() as http:
        page = http.get("/login")
        anonymous = SimpleCookie(page.headers["set-cookie"])["cybergine_csrf"]
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        # An HTTP client keeps Secure cookies to HTTPS; the proxy in front would be HTTPS.
        response = http.post(
            "/login",
            data={"email": user.email, "password": PASSWORD, "csrf_token": token},
            headers={"cookie": f"cybergine_csrf={anonymous.value}"},
        )
    assert anonymous["secure"]
    assert response.status_code == 303
    cookie = SimpleCookie(response.headers["set-cookie"])["cybergine_session"]
    assert cookie["secure"]
    assert "strict-transport-security" in response.headers


async def test_hostile_names_are_shown_as_text(browser: Browser, database: Database) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    _, owner = await make_organisation(database, name=hostile)
    browser.sign_in(owner.email, PASSWORD)
    for page in ("/", "/team", "/settings"):
        text = browser.get(page).text
        assert "<script>alert" not in text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text or "&lt;script&gt;" in text
