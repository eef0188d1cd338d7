"""The Assistants pages in a real browser: a shop owner creates an assistant, changes its
settings, and sees a mistake explained next to the field, by keyboard and mouse alike, on
a desktop and on a phone, with no accessibility violation or console error on the way."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, ViewportSize, expect

from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge import service as knowledge
from tests.browser.conftest import run_async, sign_in
from tests.support.accessibility import (
    assert_fits_and_accessible,
    console_errors,
)
from tests.support.factories import make_organisation
from tests.support.server import LiveServer

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


def _shop_owner(database_url: str) -> str:
    """A new organisation with a knowledge collection; returns its owner's e-mail."""

    async def make() -> str:
        database = Database(database_url, pool_size=2)
        try:
            organisation, owner = await make_organisation(database, name="Corner Shop")
            async with database.transaction() as session:
                await knowledge.create_qa(
                    TenantScope(session, organisation.id),
                    question="Do you ship abroad?",
                    answer="Yes, to all of Europe.",
                    collection="shipping",
                )
            return owner.email
        finally:
            await database.dispose()

    return run_async(make())


def _tidy(page: Page) -> None:
    """Takes off the empty style="" that axe and full-page screenshots leave on elements:
    HTMX's next swap copies the attributes of same-id elements onto the new page, and the
    CSP then (rightly) refuses a style attribute, which would be logged as the page's."""
    page.evaluate(
        "() => document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))"
    )


def _check(page: Page, where: str) -> None:
    assert_fits_and_accessible(page, where)
    _tidy(page)


def _screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    _tidy(page)


def _unexpected(errors: list[str]) -> list[str]:
    """The console's errors, less the line the browser logs for each 422 the form answers."""
    return [e for e in errors if "status of 422" not in e]


def test_a_shop_owner_creates_an_assistant_and_corrects_a_mistake(
    chromium: Browser, live_server: LiveServer, database_url: str, screenshots: Path
) -> None:
    email = _shop_owner(database_url)
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    with console_errors(page) as errors:
        sign_in(page, live_server.url, email)
        main_nav = page.get_by_role("navigation", name="Main")
        main_nav.get_by_role("link", name="Assistants").click()
        expect(page.get_by_role("heading", name="No assistant yet")).to_be_visible()
        _check(page, "the empty list")

        page.get_by_role("link", name="Create your first assistant").click()
        expect(page.get_by_role("heading", name="New assistant", level=1)).to_be_visible()
        _check(page, "the new assistant's form")
        page.get_by_label("Name", exact=True).fill("Mia")
        page.get_by_role("button", name="Create assistant").click()

        expect(page.get_by_role("status")).to_contain_text("Assistant created.")
        expect(page.get_by_role("heading", name="Mia", level=1)).to_be_visible()
        # The offline responder says what it ignores, until a model is chosen.
        note = page.get_by_test_id("offline-note")
        expect(note).to_be_visible()
        _check(page, "the assistant's page")

        # Keyboard only: tick the collection and change the tone.
        collection = page.get_by_label("shipping")
        collection.focus()
        page.keyboard.press("Space")
        expect(collection).to_be_checked()
        page.get_by_label("Tone").select_option("friendly")
        page.get_by_label("How it answers").select_option("openai")
        expect(note).to_be_hidden()
        page.get_by_label("Set opening hours").check()
        page.get_by_label("Tuesday").fill("9 to 5")
        languages = page.get_by_label("Languages")
        languages.fill("en, english!")
        page.get_by_role("button", name="Save changes").click()

        # Each mistake is explained under its field, and listed at the top; what was
        # typed stays.
        expect(page.get_by_test_id("form-errors")).to_contain_text("2 things to correct")
        expect(page.locator("#languages-error")).to_contain_text("is not a language code")
        expect(languages).to_have_attribute("aria-invalid", "true")
        described_by = languages.get_attribute("aria-describedby") or ""
        assert "languages-error" in described_by.split()
        expect(languages).to_be_focused()
        expect(languages).to_have_value("en, english!")
        tuesday = page.get_by_label("Tuesday")
        expect(page.locator("#hours_tue-error")).to_contain_text("Tuesday: write the hours")
        expect(tuesday).to_have_attribute("aria-invalid", "true")
        expect(tuesday).to_have_value("9 to 5")
        expect(page.get_by_label("Tone")).to_have_value("friendly")
        expect(collection).to_be_checked()
        _check(page, "the form with errors")
        _screenshot(page, screenshots / "assistant-errors.png")

        languages.fill("en, fr")
        tuesday.fill("09:00-17:00")
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("status")).to_contain_text("Assistant saved.")
        expect(page.get_by_label("Languages")).to_have_value("en, fr")
        expect(page.get_by_label("Tuesday")).to_have_value("09:00-17:00")

        main_nav.get_by_role("link", name="Assistants").click()
        expect(page.get_by_role("link", name="Mia")).to_be_visible()
        _check(page, "the list")
    assert _unexpected(errors) == []
    context.close()


def test_the_assistant_page_on_a_phone(
    chromium: Browser, live_server: LiveServer, database_url: str, screenshots: Path
) -> None:
    email = _shop_owner(database_url)
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    with console_errors(page) as errors:
        sign_in(page, live_server.url, email)
        page.goto(f"{live_server.url}/assistants/new")
        page.get_by_label("Name", exact=True).fill("Mia")
        page.get_by_role("button", name="Create assistant").click()
        expect(page.get_by_role("status")).to_contain_text("Assistant created.")
        _check(page, "the assistant's page on a phone")
        _screenshot(page, screenshots / "assistant-phone.png")
    assert errors == []
    context.close()
