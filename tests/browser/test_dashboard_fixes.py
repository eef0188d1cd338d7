"""Small fixes a shop owner meets in the dashboard, in a real browser: a success notice is
shown once (a reload does not bring it back), and a team member's role changes only when
the change is confirmed."""

from __future__ import annotations

import uuid

from playwright.sync_api import Browser, Dialog, Page, expect

from cybergine.accounts.models import Membership, Role
from cybergine.db.engine import Database
from cybergine.demo import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD
from tests.browser.conftest import run_async, sign_in
from tests.support.accessibility import assert_accessible, console_errors
from tests.support.factories import add_member
from tests.support.server import LiveServer

DESKTOP = {"width": 1280, "height": 800}


def _sign_in(page: Page, platform: LiveServer) -> None:
    sign_in(page, platform.url, DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD)


def test_a_success_notice_is_shown_once(chromium: Browser, platform: LiveServer) -> None:
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    with console_errors(page) as errors:
        _sign_in(page, platform)
        page.goto(f"{platform.url}/settings")
        page.get_by_role("button", name="Save").first.click()

        expect(page.locator(".notice")).to_have_text("Settings saved.")
        # Gone from the address bar once shown (htmx pushed it after the boosted form).
        page.wait_for_function("() => !window.location.search.includes('notice')")
        page.reload()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert page.locator(".notice").count() == 0

        # A page opened with a notice in its address (no boosted navigation) loses it too.
        page.goto(f"{platform.url}/settings?notice=settings-saved")
        expect(page.locator(".notice")).to_have_text("Settings saved.")
        page.wait_for_function("() => !window.location.search.includes('notice')")
        # The page kept for the Back button is kept without its notice.
        page.get_by_role("link", name="Team").first.click()
        page.wait_for_url(f"{platform.url}/team")
        page.go_back()
        expect(page.get_by_role("heading", name="Settings")).to_be_visible()
        assert page.locator(".notice").count() == 0
    assert errors == []
    context.close()


def _membership_role(database_url: str, membership_id: uuid.UUID) -> Role:
    async def read() -> Role:
        database = Database(database_url, pool_size=1)
        try:
            async with database.transaction() as session:
                membership = await session.get(Membership, membership_id)
                assert membership is not None
                return membership.role
        finally:
            await database.dispose()

    return run_async(read())


def test_a_role_changes_only_once_the_change_is_confirmed(
    chromium: Browser, platform: LiveServer, demo: str, database_url: str
) -> None:
    async def add_agent() -> tuple[str, uuid.UUID]:
        database = Database(database_url, pool_size=1)
        try:
            user, membership = await add_member(database, uuid.UUID(demo), Role.AGENT)
            return user.name, membership.id
        finally:
            await database.dispose()

    name, membership_id = run_async(add_agent())
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    with console_errors(page) as errors:
        _sign_in(page, platform)
        page.goto(f"{platform.url}/team")
        assert_accessible(page, where="the team page with a member")
        select = page.get_by_label(f"Role of {name}", exact=True)

        # Choosing another role, by keyboard as by mouse, sends nothing.
        select.focus()
        select.select_option("viewer")
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name=f"Change role of {name}")).to_be_focused()
        assert _membership_role(database_url, membership_id) is Role.AGENT

        # The button asks first, naming the person and the new role; "Cancel" keeps all.
        asked: list[str] = []

        def dismiss(dialog: Dialog) -> None:
            asked.append(dialog.message)
            dialog.dismiss()

        page.once("dialog", dismiss)
        page.keyboard.press("Enter")
        expect(select).to_have_value("viewer")
        assert page.locator(".notice").count() == 0
        assert asked == [f"Change the role of {name} to viewer?"]
        assert _membership_role(database_url, membership_id) is Role.AGENT

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name=f"Change role of {name}").click()
        expect(page.locator(".notice")).to_have_text("Role changed.")
        assert _membership_role(database_url, membership_id) is Role.VIEWER
        expect(page.get_by_label(f"Role of {name}", exact=True)).to_have_value("viewer")
    assert errors == []
    context.close()


def test_the_widget_says_a_blank_message_is_not_sent(
    chromium: Browser, platform: LiveServer
) -> None:
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    posted: list[str] = []
    page.on(
        "request",
        lambda request: (
            posted.append(request.url) if "/widget/v1/messages" in request.url else None
        ),
    )
    with console_errors(page) as errors:
        page.goto(f"{platform.url}/demo/store")
        page.get_by_test_id("cg-launcher").click()
        box = page.get_by_test_id("cg-input")
        box.fill("  \n \u200b ")
        box.press("Enter")

        expect(page.get_by_test_id("cg-error")).to_have_text("Write a message first.")
        expect(box).to_be_focused()
        assert page.get_by_test_id("cg-message").count() == 0
        # Typing clears the warning; a real message goes out.
        box.fill("What is your return policy?")
        expect(page.get_by_test_id("cg-error")).to_be_hidden()
        page.get_by_test_id("cg-send").click()
        expect(page.locator('[data-testid="cg-message"][data-sender="customer"]')).to_have_count(1)
    assert len(posted) == 1
    assert errors == []
    context.close()


def test_handing_back_asks_about_the_waiting_message_and_tells_the_visitor(
    chromium: Browser, platform: LiveServer
) -> None:
    # A visitor asks for a person, then writes again while waiting for one.
    visitor_context = chromium.new_context(viewport=DESKTOP)
    visitor = visitor_context.new_page()
    visitor.goto(f"{platform.url}/demo/store")
    visitor.get_by_test_id("cg-launcher").click()
    visitor.get_by_test_id("cg-handoff").click()
    expect(visitor.get_by_test_id("cg-notice").last).to_contain_text("person", timeout=15_000)
    visitor.get_by_test_id("cg-input").fill("I called you about my order instead.")
    visitor.get_by_test_id("cg-send").click()

    agent_context = chromium.new_context(viewport={"width": 390, "height": 844})
    agent = agent_context.new_page()
    with console_errors(agent) as errors:
        _sign_in(agent, platform)
        agent.goto(f"{platform.url}/inbox")
        agent.get_by_test_id("inbox-row").first.locator("a").first.click()
        agent.get_by_test_id("take-over").click()
        # The choice is on the page before the take-over too (waiting for a person): the
        # page the take-over brings, without its button, must be the one chosen on.
        expect(agent.get_by_test_id("take-over")).to_have_count(0)
        choice = agent.get_by_test_id("waiting-message")
        expect(choice).to_be_visible()
        expect(agent.get_by_label("Let the assistant answer the waiting message")).to_be_checked()
        assert_accessible(agent, where="a conversation with a message waiting, at phone width")

        # By keyboard: the person dealt with it themselves.
        agent.get_by_label("Let the assistant answer the waiting message").focus()
        agent.keyboard.press("ArrowDown")
        expect(agent.get_by_label("I've dealt with it")).to_be_checked()
        agent.get_by_test_id("hand-back").focus()
        agent.keyboard.press("Enter")
        expect(agent.get_by_test_id("conversation-state")).to_have_attribute("data-state", "bot")
        expect(
            agent.locator('[data-testid="thread-message"][data-direction="internal"]').last
        ).to_contain_text("dealt with")
    assert errors == []

    # The visitor is told the assistant is back; the assistant leaves their message be.
    expect(
        visitor.locator('[data-sender="system"], [data-testid="cg-notice"]').last
    ).to_contain_text("You're chatting with the assistant again.", timeout=15_000)
    assert visitor.locator('[data-testid="cg-message"][data-sender="assistant"]').count() == 0
    agent_context.close()
    visitor_context.close()
