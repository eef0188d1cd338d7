"""The "Try it" panel in a real browser: a shop owner asks their assistant questions by
keyboard alone, sees a blank question refused under the text box, opens "Why this answer"
for the sources and their scores, sees a hand-off said as such, and starts over; on a
desktop and on a phone, with no accessibility violation or console error on the way."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, ViewportSize, expect

from cybergine.accounts.models import Role
from cybergine.accounts.principal import Principal
from cybergine.assistants import service as assistants
from cybergine.assistants.changes import AssistantChanges
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge import service as knowledge
from cybergine.settings import Settings
from tests.browser.conftest import run_async, sign_in
from tests.support.accessibility import (
    assert_fits_and_accessible,
    console_errors,
)
from tests.support.factories import make_organisation
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
RETURNS_ANSWER = "You can return any item within 30 days of delivery for a full refund."


def _shop(database_url: str, settings: Settings) -> tuple[str, str]:
    """A new organisation with an assistant and an indexed Q&A; its owner's e-mail and
    the assistant's id."""

    async def make() -> tuple[str, str]:
        database = Database(database_url, pool_size=2)
        try:
            organisation, owner = await make_organisation(database, name="Corner Shop")
            async with database.transaction() as session:
                scope = TenantScope(session, organisation.id)
                principal = Principal(organisation.id, Role.OWNER, user_id=owner.id)
                assistant = await assistants.create_assistant(
                    scope,
                    principal,
                    AssistantChanges(name="Mia", fields_set={"name"}),
                )
                await knowledge.create_qa(
                    scope, question="What is your return policy?", answer=RETURNS_ANSWER
                )
            await run_jobs(database, settings)
            return owner.email, str(assistant.id)
        finally:
            await database.dispose()

    return run_async(make())


def _ask(page: Page, question: str) -> None:
    """Types the question and sends it with the Enter key."""
    box = page.get_by_label("Your question")
    box.focus()
    box.fill(question)
    page.keyboard.press("Enter")


def test_a_shop_owner_tries_the_assistant(
    chromium: Browser,
    live_server: LiveServer,
    database_url: str,
    settings: Settings,
    screenshots: Path,
) -> None:
    email, assistant_id = _shop(database_url, settings)
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    with console_errors(page) as errors:
        sign_in(page, live_server.url, email)
        page.goto(f"{live_server.url}/assistants/{assistant_id}")
        panel = page.locator("[data-try-panel]")
        expect(panel.get_by_role("heading", name="Try it")).to_be_visible()
        expect(page.get_by_test_id("try-offline-note")).to_contain_text("ignores the persona")
        log = page.get_by_role("log")
        assert_fits_and_accessible(page, "the assistant's page with its panel")

        # A blank question is refused where it was typed.
        _ask(page, "   ")
        box = page.get_by_label("Your question")
        expect(box).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#try-text-error")).to_contain_text("empty")
        expect(box).to_be_focused()
        assert_fits_and_accessible(page, "a refused question")

        _ask(page, "What is your return policy?")
        turn = log.locator("[data-try-turn]").first
        expect(turn).to_contain_text(RETURNS_ANSWER)
        expect(turn).to_contain_text("Answered")
        expect(page.get_by_label("Your question")).to_have_value("")
        expect(page.get_by_label("Your question")).not_to_have_attribute("aria-invalid", "true")
        expect(page.get_by_label("Your question")).to_be_focused()

        # "Why this answer", opened from the keyboard.
        summary = turn.get_by_text("Why this answer")
        summary.focus()
        page.keyboard.press("Enter")
        why = turn.locator("details")
        expect(why).to_have_attribute("open", "")
        expect(why).to_contain_text("Quoted from the best-matching source")
        expect(why.locator(".try-sources li").first).to_contain_text("What is your return policy?")
        expect(why.locator(".try-sources li").first).to_contain_text("score")
        expect(why.locator(".try-sources li").first).to_contain_text("used [1]")

        _ask(page, "I want to talk to a human")
        handed = log.locator("[data-try-turn]").nth(1)
        expect(handed).to_contain_text("Handed to a person")
        expect(handed).to_contain_text("person from our team")
        # Both questions and the assistant's one answer go with the next question.
        history = page.locator('input[form="try-form"][name="history_role"]')
        expect(history).to_have_count(3)
        assert_fits_and_accessible(page, "the panel with answers")
        # caret="initial": hiding the caret would leave style="" on the inputs, which htmx
        # would then copy onto the swapped text box (refused by the CSP).
        page.screenshot(
            path=str(screenshots / "assistant-try.png"), full_page=True, caret="initial"
        )

        page.get_by_role("button", name="Start over").click()
        expect(log.locator("[data-try-turn]")).to_have_count(0)
        expect(history).to_have_count(0)
        expect(log).to_contain_text("New test chat")
        expect(page.get_by_label("Your question")).to_be_focused()

        # On a phone.
        page.set_viewport_size(PHONE)
        _ask(page, "What is your return policy?")
        expect(log.locator("[data-try-turn]")).to_have_count(1)
        log.locator("summary").first.click()
        assert_fits_and_accessible(page, "the panel on a phone")
    # The blank question's refusal is an HTTP 422, which Chromium reports in the console
    # as a failed request; anything else there is a fault.
    refusal = "Failed to load resource: the server responded with a status of 422"
    assert [e for e in errors if not e.startswith(refusal)] == [], "\n".join(errors)
    context.close()
