"""Forwarded headers are believed only from the proxies the operator lists
(CYBERGINE_TRUSTED_PROXIES); everyone else is their TCP peer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from cybergine.accounts.service.login import MAX_FAILURES_PER_IP
from cybergine.app import create_app
from cybergine.db.engine import Database
from cybergine.settings import Settings, load_settings
from cybergine.web.proxies import (
    ForwardedHeadersMiddleware,
    TrustedProxies,
    parse_trusted_proxies,
)
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, make_user, unique_email
from tests.support.server import LiveServer

WRONG = "wrong password here"


def _sign_in(browser: Browser, email: str, password: str, forwarded_for: str) -> int:
    token = browser.csrf("/login")
    response = browser.http.post(
        "/login",
        data={"email": email, "password": password, "next": "/", "csrf_token": token},
        headers={"x-forwarded-for": forwarded_for},
    )
    return response.status_code


@pytest.fixture
def proxied_server(settings: Settings) -> Iterator[LiveServer]:
    """The app behind a proxy on this machine and one on the private network."""
    behind = settings.model_copy(update={"trusted_proxies": "127.0.0.1, 10.0.0.0/8"})
    with LiveServer(create_app(behind, run_worker=False)) as server:
        yield server


async def test_a_forged_forwarded_for_does_not_escape_the_per_ip_limit(
    browser: Browser, database: Database
) -> None:
    user = await make_user(database)
    for i in range(MAX_FAILURES_PER_IP):
        assert _sign_in(browser, unique_email(), WRONG, f"203.0.113.{i}") == 400
    assert _sign_in(browser, user.email, PASSWORD, "198.51.100.77") == 429


async def test_behind_trusted_proxies_the_client_is_the_rightmost_untrusted_address(
    proxied_server: LiveServer, database: Database
) -> None:
    user = await make_user(database)
    browser = Browser(proxied_server.url)
    try:
        # The client forges the left part; the proxies append what they saw.
        for i in range(MAX_FAILURES_PER_IP):
            chain = f"192.0.2.{i}, 203.0.113.7, 10.0.0.2"
            assert _sign_in(browser, unique_email(), WRONG, chain) == 400
        assert _sign_in(browser, user.email, PASSWORD, "203.0.113.7, 10.1.2.3") == 429
        assert _sign_in(browser, user.email, PASSWORD, "203.0.113.8, 10.0.0.2") == 303
    finally:
        browser.close()


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.1", ["198.51.100.1"], "203.0.113.1"),  # not a proxy: headers ignored
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", ["198.51.100.1, 203.0.113.9"], "203.0.113.9"),
        ("10.0.0.1", ["198.51.100.1", "203.0.113.9, 10.0.0.7"], "203.0.113.9"),
        ("10.0.0.1", ["10.0.0.9, 10.0.0.8"], "10.0.0.9"),  # all proxies: the first
        ("10.0.0.1", ["203.0.113.9:4711"], "203.0.113.9"),
        ("10.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("10.0.0.1", ["203.0.113.9, garbage"], "10.0.0.1"),  # unreadable: the last vouched
        ("127.0.0.1", ["203.0.113.9"], "127.0.0.1"),  # loopback is not trusted unless listed
    ],
)
def test_client_address(peer: str, forwarded_for: list[str], client: str) -> None:
    trusted = TrustedProxies(parse_trusted_proxies("10.0.0.0/8"))
    assert trusted.client(peer, forwarded_for) == client


def test_no_proxy_is_trusted_by_default() -> None:
    assert load_settings().trusted_proxies == ""
    assert parse_trusted_proxies("") == ()


def test_a_bad_trusted_proxy_entry_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYBERGINE_TRUSTED_PROXIES", "10.0.0.1, nginx.local")
    with pytest.raises(ValidationError, match=r"'nginx\.local' is not an IP address"):
        load_settings()


@pytest.mark.parametrize(("peer", "scheme"), [("10.0.0.1", "https"), ("203.0.113.1", "http")])
async def test_forwarded_proto_is_believed_only_from_a_trusted_proxy(
    peer: str, scheme: str
) -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def nothing() -> Message:
        return {}

    async def ignore(message: Message) -> None:
        pass

    middleware = ForwardedHeadersMiddleware(
        app, trusted=TrustedProxies(parse_trusted_proxies("10.0.0.0/8"))
    )
    headers = [(b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"203.0.113.9")]
    scope = {"type": "http", "scheme": "http", "client": (peer, 4711), "headers": headers}
    await middleware(scope, nothing, ignore)
    assert seen[0]["scheme"] == scheme
    assert seen[0]["client"][0] == ("203.0.113.9" if scheme == "https" else peer)
