"""The satisfaction survey in a real browser: a person closes the conversation in the
inbox, the visitor's widget shows five stars as a radio group, and the visitor rates with
the keyboard alone (arrow keys choose, Enter sends)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, ViewportSize, expect
from sqlalchemy import select

from cybergine.conversations.csat_models import CsatSurvey
from cybergine.db.engine import Database
from tests.browser.conftest import run_async
from tests.support.server import LiveServer

DESKTOP: ViewportSize = {"width": 1280, "height": 800}


def _ratings(database_url: str) -> list[int | None]:
    async def read() -> list[int | None]:
        database = Database(database_url, pool_size=1)
        try:
            async with database.transaction() as session:
                return [s.rating for s in (await session.execute(select(CsatSurvey))).scalars()]
        finally:
            await database.dispose()

    return run_async(read())


def test_a_visitor_rates_the_closed_conversation_with_the_keyboard(
    chromium: Browser, platform: LiveServer, database_url: str, screenshots: Path
) -> None:
    from cybergine.demo import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD

    visitor_context = chromium.new_context(viewport=DESKTOP)
    visitor = visitor_context.new_page()
    visitor.goto(f"{platform.url}/demo/store")
    visitor.get_by_test_id("cg-launcher").click()
    visitor.get_by_test_id("cg-input").fill("What is your return policy?")
    visitor.get_by_test_id("cg-send").click()
    expect(
        visitor.locator('[data-testid="cg-message"][data-sender="assistant"]').first
    ).to_be_visible(timeout=15_000)

    agent_context = chromium.new_context(viewport=DESKTOP)
    agent = agent_context.new_page()
    agent.goto(f"{platform.url}/login")
    agent.get_by_label("E-mail").fill(DEMO_OWNER_EMAIL)
    agent.get_by_label("Password").fill(DEMO_OWNER_PASSWORD)
    agent.get_by_role("button", name="Sign in").click()
    agent.wait_for_url(f"{platform.url}/")
    agent.goto(f"{platform.url}/inbox")
    agent.get_by_test_id("inbox-row").first.locator("a").first.click()
    agent.get_by_test_id("close-conversation").click()
    expect(agent.get_by_test_id("conversation-state")).to_have_attribute("data-state", "closed")

    survey = visitor.get_by_test_id("cg-survey")
    expect(survey).to_be_visible(timeout=15_000)
    expect(survey.get_by_role("group", name="Your rating")).to_be_visible()
    stars = survey.get_by_role("radio")
    expect(stars).to_have_count(5)
    expect(survey.get_by_role("radio", name="4 of 5 stars")).to_be_visible()
    stars.first.focus()
    visitor.keyboard.press("Space")  # 1
    for _ in range(3):
        visitor.keyboard.press("ArrowRight")  # 2, 3, 4
    expect(survey.get_by_role("radio", name="4 of 5 stars")).to_be_checked()
    visitor.keyboard.press("Tab")
    expect(visitor.get_by_test_id("cg-rate")).to_be_focused()
    visitor.keyboard.press("Enter")
    expect(survey.get_by_role("status")).to_have_text("Thank you for your rating.", timeout=10_000)
    expect(visitor.get_by_test_id("cg-rate")).to_be_disabled()
    visitor.screenshot(path=str(screenshots / "widget-csat.png"))
    assert _ratings(database_url) == [4]

    # Reloaded, the widget shows the stars given, and no second rating can be sent.
    visitor.reload()
    launcher = visitor.get_by_test_id("cg-launcher")
    if launcher.get_attribute("aria-expanded") == "false":
        launcher.click()
    expect(
        visitor.get_by_test_id("cg-survey").get_by_role("radio", name="4 of 5 stars")
    ).to_be_checked(timeout=10_000)
    expect(visitor.get_by_test_id("cg-rate")).to_be_disabled()
    agent_context.close()
    visitor_context.close()
