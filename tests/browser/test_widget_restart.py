"""A widget whose socket the server closes with 1012 ("service restart"), as a stopping
web process does (``cybergine.web.draining``), reconnects within about a second,
resuming where it was, and goes on receiving answers."""

from __future__ import annotations

import asyncio

from playwright.sync_api import Browser, Page, expect

from cybergine.realtime.hub import Hub
from tests.support.processes import wait_until
from tests.support.server import LiveServer

ANSWER = "You can return any item within 30 days of delivery for a full refund."

# Records when each socket the page opens opens and closes, and with which code.
WATCH_SOCKETS = """
window.__sockets = {opened: [], closed: []};
const NativeWebSocket = window.WebSocket;
window.WebSocket = function (url, protocols) {
  const ws = protocols === undefined
    ? new NativeWebSocket(url) : new NativeWebSocket(url, protocols);
  ws.addEventListener("open", () => window.__sockets.opened.push(performance.now()));
  ws.addEventListener("close", (event) =>
    window.__sockets.closed.push({code: event.code, at: performance.now()}));
  return ws;
};
window.WebSocket.prototype = NativeWebSocket.prototype;
Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
"""


def _ask(page: Page, text: str) -> None:
    page.get_by_test_id("cg-input").fill(text)
    page.get_by_test_id("cg-send").click()


def _wait(page: Page, kind: str, count: int) -> None:
    """Until the page has seen ``count`` sockets opened (or closed). Polled from here:
    the page's CSP forbids the evaluated strings of Playwright's own waiting."""
    wait_until(
        lambda: page.evaluate(f"() => window.__sockets.{kind}.length") >= count,
        10,
        f"{count} socket(s) {kind}",
    )


def _in_server(platform: LiveServer, call: object) -> None:
    loop: asyncio.AbstractEventLoop | None = platform.server._loop
    assert loop is not None
    loop.call_soon_threadsafe(call)  # type: ignore[arg-type]


def test_a_socket_closed_for_a_restart_comes_back_at_once(
    chromium: Browser, platform: LiveServer
) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.add_init_script(WATCH_SOCKETS)
    page.goto(f"{platform.url}/demo/store")
    page.get_by_test_id("cg-launcher").click()
    answers = page.locator('[data-testid="cg-message"][data-sender="assistant"]')
    _ask(page, "What is your return policy?")
    expect(answers.first).to_contain_text(ANSWER, timeout=15_000)
    _wait(page, "opened", 1)

    hub: Hub = platform.app.state.hub  # type: ignore[attr-defined]
    _in_server(platform, hub.close_waiters)  # what the server does when it stops accepting
    _wait(page, "closed", 1)
    _in_server(platform, lambda: setattr(hub, "closing", False))  # and the next one is up
    _wait(page, "opened", 2)

    sockets = page.evaluate("window.__sockets")
    assert sockets["closed"][0]["code"] == 1012
    reconnected_ms = sockets["opened"][-1] - sockets["closed"][0]["at"]
    assert reconnected_ms < 2_000, reconnected_ms
    print(f"widget socket back {reconnected_ms:.0f} ms after the 1012 close")

    _ask(page, "How long does shipping take?")
    expect(answers).to_have_count(2, timeout=15_000)
    expect(answers.nth(1)).to_contain_text("business days")
    context.close()
