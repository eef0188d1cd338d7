"""The Analytics page in a real browser, on the known history of
``tests/analytics/known.py``: a viewer opens it from the navigation, changes the period,
reads a chart's data table, and follows a figure into the inbox, which lists the
conversations behind it under a banner; on a desktop and a phone, with no accessibility
violation, no console error (the charts are inline SVG under the strict CSP) and nothing
to scroll sideways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, ViewportSize, expect

from cybergine.accounts.models import Role
from cybergine.analytics import rollups
from cybergine.db.engine import Database
from tests.analytics import known
from tests.browser.conftest import run_async, sign_in
from tests.support.accessibility import assert_fits_and_accessible, console_errors
from tests.support.factories import add_member, make_organisation
from tests.support.server import LiveServer

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


def _known_shop(database_url: str) -> tuple[known.Known, str]:
    """The known history, its aggregates refreshed; a viewer's e-mail."""

    async def make() -> tuple[known.Known, str]:
        database = Database(database_url, pool_size=2)
        try:
            organisation, _ = await make_organisation(database, name="Known history")
            async with database.transaction() as session:
                history = await known.seed(session, organisation.id, datetime.now(UTC))
            async with database.transaction() as session:
                measure = rollups.Measure(datetime.now(UTC), timedelta(hours=known.IDLE_HOURS))
                await rollups.refresh(session, organisation.id, measure)
            viewer, _ = await add_member(database, organisation.id, Role.VIEWER)
            return history, viewer.email
        finally:
            await database.dispose()

    return run_async(make())


def test_a_viewer_reads_the_figures_changes_the_period_and_drills_into_the_inbox(
    chromium: Browser, live_server: LiveServer, database_url: str, screenshots: Path
) -> None:
    history, email = _known_shop(database_url)
    names = {str(id): name for name, id in history.conversations.items()}
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    with console_errors(page) as errors:
        sign_in(page, live_server.url, email)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Analytics").click()
        expect(page.get_by_role("heading", name="Analytics", level=1)).to_be_visible()
        # The organisation's time zone (its assistants' business hours): Asia/Dubai.
        expect(page.get_by_label("Time zone", exact=True)).to_have_value("Asia/Dubai")

        # The period of the known history, in UTC, through the form.
        page.get_by_label("From", exact=True).fill(history.first.isoformat())
        page.get_by_label("To", exact=True).fill(history.last.isoformat())
        page.get_by_label("Time zone", exact=True).fill("UTC")
        page.get_by_role("button", name="Show").click()
        conversations = page.locator('[data-figure="conversations"]')
        expect(conversations.locator(".figure-value")).to_have_text("6")
        expect(conversations.get_by_test_id("figure-previous")).to_have_text("1")
        expect(page.locator('[data-figure="containment_rate"] .figure-value')).to_have_text("16.7%")
        expect(page.get_by_test_id("chart-volume").locator("svg rect.bar")).to_have_count(
            (history.last - history.first).days + 1
        )
        assert_fits_and_accessible(page, "the analytics page")
        page.screenshot(path=str(screenshots / "analytics.png"), full_page=True)

        # A chart's data table, opened by keyboard, has the chart's numbers.
        heat = page.get_by_test_id("chart-heatmap")
        heat.get_by_text("Data table: conversations by weekday and hour").focus()
        page.keyboard.press("Enter")
        monday = heat.get_by_role("row", name="Monday")
        expect(monday.get_by_role("link", name="2")).to_have_count(1)  # 08:00: C1 and C6
        assert_fits_and_accessible(page, "the analytics page with a data table open")

        # A quick period: the last 7 days.
        page.get_by_test_id("preset-7").click()
        today = datetime.now(UTC).date()
        expect(page.get_by_label("From", exact=True)).to_have_value(
            (today - timedelta(days=6)).isoformat()
        )
        expect(page.get_by_test_id("preset-7")).to_have_attribute("aria-current", "true")

        # Back to the known period; the figure leads to the conversations behind it.
        page.go_back()
        expect(conversations.locator(".figure-value")).to_have_text("6")
        page.locator('[data-figure="handed_to_person"]').get_by_role("link").click()
        banner = page.get_by_test_id("drill-banner")
        expect(banner).to_contain_text("Conversations behind handed to a person")
        rows = page.get_by_test_id("inbox-row")
        expect(rows).to_have_count(3)
        listed = {names[rows.nth(n).get_attribute("data-conversation-id") or ""] for n in range(3)}
        assert listed == known.EXPECTED_DRILLDOWN["handed_to_person"]
        assert_fits_and_accessible(page, "the inbox behind a figure")
        banner.get_by_role("link", name="Show every conversation").click()
        expect(page.get_by_test_id("drill-banner")).to_have_count(0)

        # On a phone the page still fits.
        page.set_viewport_size(PHONE)
        page.goto(f"{live_server.url}/analytics?timezone=UTC&from={history.first}")
        expect(conversations.locator(".figure-value")).to_have_text("6")
        assert_fits_and_accessible(page, "the analytics page on a phone")
    assert errors == [], "\n".join(errors)
    context.close()
