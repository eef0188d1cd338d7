"""The API reference at /api/docs, in a real browser: it renders the API's operations
from our own origin, under the platform's Content-Security-Policy, with nothing refused,
nothing fetched from elsewhere and nothing in the console."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Request, expect

from cybergine.db.engine import Database
from tests.browser.conftest import run_async
from tests.support.accessibility import assert_accessible, console_errors, horizontal_overflow
from tests.support.factories import PASSWORD, make_organisation
from tests.support.server import LiveServer

# The reference is built in the page from the whole OpenAPI document: seconds on a busy
# two-core machine (two suites side by side), more than expect's default of five.
RENDERED_MS = 20_000

# Recorded by the page itself: a refusal the console might word differently still counts.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_the_reference_renders_the_operations_under_our_policy(
    chromium: Browser, live_server: LiveServer, screenshots: Path
) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    elsewhere: list[str] = []

    def note(request: Request) -> None:
        if not request.url.startswith((live_server.url, "data:")):
            elsewhere.append(request.url)

    page.on("request", note)
    try:
        with console_errors(page) as errors:
            response = page.goto(f"{live_server.url}/api/docs")
            assert response is not None
            assert response.status == 200
            assert "script-src 'self'" in response.headers["content-security-policy"]
            expect(page.get_by_role("heading", name="API reference", level=1)).to_be_visible()
            listed = page.get_by_text("List Assistants", exact=True).first
            expect(listed).to_be_visible(timeout=RENDERED_MS)
            expect(page.get_by_text("/api/v1/assistants", exact=True).first).to_be_visible()
            # An operation opens to show its parameters and answers; nothing to send.
            listed.click()
            expect(page.locator(".opblock.is-open .responses-wrapper").first).to_be_visible()
            expect(page.get_by_role("button", name="Try it out")).to_have_count(0)
            assert_accessible(page, where="/api/docs")
            page.screenshot(path=screenshots / "api-reference.png")
            violations = page.evaluate("() => window.__cspViolations")
        assert errors == []
        assert violations == []
        assert elsewhere == []

        page.set_viewport_size({"width": 390, "height": 844})
        assert horizontal_overflow(page) == 0
    finally:
        context.close()


def test_the_api_keys_page_links_to_the_reference(
    chromium: Browser, live_server: LiveServer, database_url: str
) -> None:
    async def owner_email() -> str:
        database = Database(database_url, pool_size=1)
        try:
            _, owner = await make_organisation(database)
            return owner.email
        finally:
            await database.dispose()

    email = run_async(owner_email())
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/$"))
        page.goto(f"{live_server.url}/settings/api-keys")
        page.get_by_role("link", name="Read the API reference").click()
        page.wait_for_url(re.compile(r"/api/docs"))
        listed = page.get_by_text("List Assistants", exact=True).first
        expect(listed).to_be_visible(timeout=RENDERED_MS)
    finally:
        context.close()
