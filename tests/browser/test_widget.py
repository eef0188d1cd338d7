"""The chat widget in a real browser, on the demo storefront: a visitor's question gets
the knowledge base's answer with its source, the history survives a reload, the widget
keeps its styles and text to itself, and a site that is not allowed gets no session."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.support.server import LiveServer

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ANSWER = "You can return any item within 30 days of delivery for a full refund."


def _ask(page: Page, text: str) -> None:
    page.get_by_test_id("cg-input").fill(text)
    page.get_by_test_id("cg-send").click()


def _assistant_messages(page: Page):  # type: ignore[no-untyped-def]
    return page.locator('[data-testid="cg-message"][data-sender="assistant"]')


def test_a_visitor_gets_the_answer_with_its_source_and_keeps_it_on_reload(
    chromium: Browser, platform: LiveServer, screenshots: Path
) -> None:
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(f"{platform.url}/demo/store")
    launcher = page.get_by_test_id("cg-launcher")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("cg-disclosure")).to_contain_text("AI assistant")
    expect(page.get_by_test_id("cg-handoff")).to_be_visible()
    expect(page.get_by_test_id("cg-input")).to_be_focused()

    _ask(page, "What is your return policy?")
    answer = _assistant_messages(page).first
    expect(answer).to_contain_text(ANSWER, timeout=15_000)
    expect(page.get_by_test_id("cg-sources").first).to_contain_text("What is your return policy?")
    page.screenshot(path=str(screenshots / "widget-desktop.png"))

    # Reload: the conversation is still there, once.
    page.reload()
    launcher = page.get_by_test_id("cg-launcher")
    if launcher.get_attribute("aria-expanded") == "false":
        launcher.click()
    expect(_assistant_messages(page)).to_have_count(1, timeout=10_000)
    expect(page.locator('[data-testid="cg-message"][data-sender="customer"]')).to_have_count(1)
    context.close()


def test_the_widget_on_a_phone(chromium: Browser, platform: LiveServer, screenshots: Path) -> None:
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{platform.url}/demo/store")
    page.get_by_test_id("cg-launcher").click()
    _ask(page, "How long does shipping take?")
    expect(_assistant_messages(page).first).to_contain_text("business days", timeout=15_000)
    panel = page.get_by_test_id("cg-panel")
    box = panel.bounding_box()
    assert box is not None
    assert box["width"] >= PHONE["width"] - 1  # full screen on a phone
    page.screenshot(path=str(screenshots / "widget-phone.png"))
    context.close()


def test_hostile_text_stays_text_and_styles_stay_inside(
    chromium: Browser, platform: LiveServer
) -> None:
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{platform.url}/demo/store")
    page.get_by_test_id("cg-launcher").click()
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    _ask(page, hostile)
    mine = page.locator('[data-testid="cg-message"][data-sender="customer"]').first
    expect(mine).to_contain_text(hostile)
    expect(_assistant_messages(page).first).to_be_visible(timeout=15_000)
    assert dialogs == []
    assert page.locator("img[src=x]").count() == 0  # nothing became markup on the page
    # The shop's own styles are untouched by the widget's.
    assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith("system-ui")
    context.close()


def test_a_site_that_is_not_allowed_gets_no_widget(chromium: Browser, platform: LiveServer) -> None:
    key_page = platform.client().get("/demo/store").text
    key = key_page.split('data-assistant="', 1)[1].split('"', 1)[0]

    async def elsewhere(request: object) -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><title>Another shop</title><h1>Another shop</h1>"
            f'<script src="{platform.url}/widget.js" data-assistant="{key}" async></script>'
        )

    with LiveServer(Starlette(routes=[Route("/", elsewhere)])) as other:
        context = chromium.new_context(viewport=DESKTOP)
        page = context.new_page()
        answered: list[int] = []
        page.on(
            "response",
            lambda response: (
                answered.append(response.status) if "/widget/v1/session" in response.url else None
            ),
        )
        # The server gives a site it does not list no CORS headers, on the preflight or the
        # refusal alike, so the browser fails the request before the page can read anything.
        with page.expect_event(
            "requestfailed", predicate=lambda request: "/widget/v1/session" in request.url
        ):
            page.goto(other.url)
        assert answered == []
        assert page.get_by_test_id("cg-launcher").count() == 0
        context.close()


def test_a_person_takes_over_from_the_inbox_and_the_visitor_sees_the_reply(
    chromium: Browser, platform: LiveServer, screenshots: Path
) -> None:
    from cybergine.demo import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD

    # The agent signs in and watches the inbox.
    agent_context = chromium.new_context(viewport=DESKTOP)
    agent = agent_context.new_page()
    agent.goto(f"{platform.url}/login")
    agent.get_by_label("E-mail").fill(DEMO_OWNER_EMAIL)
    agent.get_by_label("Password").fill(DEMO_OWNER_PASSWORD)
    agent.get_by_role("button", name="Sign in").click()
    agent.wait_for_url(f"{platform.url}/")
    agent.goto(f"{platform.url}/inbox")
    expect(agent.get_by_test_id("inbox-row")).to_have_count(0)

    # A visitor asks a question, then for a person.
    visitor_context = chromium.new_context(viewport=DESKTOP)
    visitor = visitor_context.new_page()
    visitor.goto(f"{platform.url}/demo/store")
    visitor.get_by_test_id("cg-launcher").click()
    _ask(visitor, "Can I change the size of my order 1042?")
    expect(_assistant_messages(visitor).first).to_be_visible(timeout=15_000)
    visitor.get_by_test_id("cg-handoff").click()
    expect(visitor.get_by_test_id("cg-notice").last).to_contain_text("person", timeout=15_000)

    # The conversation appears in the inbox without a reload, waiting for a person.
    row = agent.get_by_test_id("inbox-row").first
    expect(row).to_have_attribute("data-state", "waiting_for_human", timeout=15_000)
    agent.screenshot(path=str(screenshots / "inbox.png"))
    row.locator("a").first.click()
    agent.get_by_test_id("take-over").click()
    expect(agent.get_by_test_id("conversation-state")).to_have_attribute("data-state", "human")
    agent.get_by_test_id("reply-text").fill("Hi, this is Dana from the shop. Size 43 it is!")
    agent.get_by_test_id("reply-send").click()
    expect(
        agent.locator('[data-testid="thread-message"][data-sender="agent"]').last
    ).to_contain_text("Size 43 it is!")
    # Scrolled from inside the page: live updates may swap the badge for a new element
    # at any moment, and a handle Playwright holds would then be detached.
    agent.evaluate(
        "document.querySelector('[data-testid=\"conversation-state\"]').scrollIntoView()"
    )
    agent.screenshot(path=str(screenshots / "conversation.png"), full_page=True)

    # The visitor is told a person joined, and gets the reply live.
    expect(visitor.locator('[data-testid="cg-message"][data-sender="agent"]').last).to_contain_text(
        "Size 43 it is!", timeout=15_000
    )
    expect(visitor.get_by_test_id("cg-notice").last).to_contain_text("joined")
    visitor.screenshot(path=str(screenshots / "widget-agent-reply.png"))

    agent_context.close()
    visitor_context.close()
