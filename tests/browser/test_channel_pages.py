"""The Channels pages in a real browser: a shop owner sees the chat bubble's live preview
follow a colour they have not saved yet, copies the snippet, and lists their website; on a
desktop and on a phone, with no accessibility violation or console error."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, ViewportSize, expect

from cybergine.db.engine import Database
from tests.browser.conftest import run_async, sign_in
from tests.support.accessibility import (
    assert_fits_and_accessible,
    console_errors,
)
from tests.support.factories import make_organisation
from tests.support.server import LiveServer

DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


def _shop(database_url: str) -> str:
    """A new organisation; returns its owner's e-mail."""

    async def make() -> str:
        database = Database(database_url, pool_size=2)
        try:
            _organisation, owner = await make_organisation(database, name="Corner Shop")
            return owner.email
        finally:
            await database.dispose()

    return run_async(make())


def _create_assistant(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/assistants/new")
    page.get_by_label("Name", exact=True).fill("Mia")
    page.get_by_role("button", name="Create assistant").click()
    expect(page.get_by_role("heading", name="Mia", level=1)).to_be_visible()


def test_the_preview_follows_an_unsaved_colour_and_the_snippet_copies(
    chromium: Browser, live_server: LiveServer, database_url: str
) -> None:
    email = _shop(database_url)
    context = chromium.new_context(viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    with console_errors(page) as errors:
        sign_in(page, live_server.url, email)
        _create_assistant(page, live_server.url)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Channels").click()
        expect(page.get_by_role("heading", name="Channels", level=1)).to_be_visible()
        assert_fits_and_accessible(page, "the channels overview")
        page.get_by_role("link", name="Set up the chat bubble of Mia").click()
        expect(page.get_by_role("heading", name="Chat bubble of Mia")).to_be_visible()
        expect(page.get_by_test_id("origins-empty")).to_be_visible()

        # The preview is the real widget, open, in the saved (default) colour.
        launcher = page.frame_locator("[data-testid=widget-preview]").get_by_test_id("cg-launcher")
        expect(launcher).to_have_css("background-color", "rgb(11, 95, 255)")
        assert_fits_and_accessible(page, "the chat bubble's page")

        # An unsaved colour reaches the preview.
        page.get_by_label("Colour").fill("#aa3300")
        expect(launcher).to_have_css("background-color", "rgb(170, 51, 0)")
        # The title, typed with a pause: the preview reloads meanwhile and opens without
        # taking the focus, so the rest of the typing still lands in the field.
        title = page.get_by_label("Title")
        title.click()
        page.keyboard.type("Ask")
        preview = page.frame_locator("[data-testid=widget-preview]")
        expect(preview.get_by_test_id("cg-title")).to_have_text("Ask")
        page.keyboard.type(" Mia")
        expect(title).to_have_value("Ask Mia")
        expect(preview.get_by_test_id("cg-title")).to_have_text("Ask Mia")

        # Copy the snippet, by keyboard.
        copy = page.get_by_test_id("copy-widget-snippet")
        copy.focus()
        page.keyboard.press("Enter")
        expect(copy).to_have_text("Copied")
        copied = page.evaluate("() => navigator.clipboard.readText()")
        assert copied.startswith(f'<script src="{live_server.url}/widget.js" data-assistant="wk_')

        # The shop's website, added: the warning goes.
        page.get_by_label("Website address").fill("https://shop.example")
        page.get_by_role("button", name="Add website").click()
        expect(page.get_by_role("status")).to_contain_text("Website added")
        expect(page.get_by_test_id("origins-empty")).to_have_count(0)
        expect(page.get_by_text("https://shop.example", exact=True)).to_be_visible()

        # The page the add answered with has an empty field of its own: type there.
        address = page.get_by_label("Website address")
        expect(address).to_have_value("")
        address.fill("shop.example/products")
        expect(address).to_have_value("shop.example/products")
        page.get_by_role("button", name="Add website").click()
        expect(page.get_by_test_id("error-origin")).to_contain_text("is not an origin")
        expect(page.get_by_label("Website address")).to_have_attribute("aria-invalid", "true")
        assert_fits_and_accessible(page, "a refused website")

        page.set_viewport_size(PHONE)
        page.goto(f"{live_server.url}/channels/whatsapp")
        expect(page.get_by_role("heading", name="Connect a number")).to_be_visible()
        assert_fits_and_accessible(page, "the WhatsApp page on a phone")
    assert [e for e in errors if "status of 422" not in e] == []
    context.close()
