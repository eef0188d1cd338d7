"""The retrieval tester in a real browser, on the demo shop: a question typed and searched
by keyboard shows the ranked passages with their scores and the grounding threshold line,
the address keeps the question, and the page passes the accessibility scan at desktop
and phone width."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import Browser, Page, expect

from cybergine.demo import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD
from tests.browser.conftest import sign_in
from tests.support.accessibility import assert_accessible, console_errors, horizontal_overflow
from tests.support.server import LiveServer

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def _sign_in(page: Page, base: str) -> None:
    sign_in(page, base, DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD)


def test_a_question_shows_the_ranked_passages_and_the_threshold(
    chromium: Browser, platform: LiveServer, screenshots: Path
) -> None:
    page = chromium.new_page(viewport=DESKTOP)  # type: ignore[arg-type]
    try:
        with console_errors(page) as errors:
            _sign_in(page, platform.url)
            page.goto(f"{platform.url}/knowledge/tester")
            expect(page.get_by_role("heading", name="Test retrieval")).to_be_visible()
            assert_accessible(page, where="the retrieval tester, empty")

            question = page.get_by_label("Question")
            question.fill("How long does delivery take?")
            page.get_by_label("Search in").select_option(label="faq")
            question.press("Enter")  # by keyboard: the form is searched over HTMX

            results = page.get_by_test_id("tester-result")
            expect(results.first).to_be_visible()
            expect(page.get_by_test_id("threshold-line")).to_contain_text(
                "answers below this line are not used"
            )
            expect(results.first).to_contain_text("How long does shipping take?")
            expect(results.first).to_contain_text("Used for answers")
            expect(results.first.locator('[data-score="fused"]')).to_have_text(
                re.compile(r"^0\.\d{3}$")
            )
            expect(results.first.locator('[data-score="dense"]')).to_contain_text(".")
            expect(results.first.locator('[data-score="lexical"]')).to_contain_text(".")
            # The address keeps the question: a reload (or a colleague) sees the same.
            assert parse_qs(urlparse(page.url).query)["q"] == ["How long does delivery take?"]
            expect(page.get_by_label("Question")).to_be_focused()
            assert_accessible(page, where="the retrieval tester, with results")
            page.screenshot(path=str(screenshots / "retrieval-tester.png"), full_page=True)

            # The passage's link opens its Q&A pair.
            href = results.first.get_by_role("link").first.get_attribute("href")
            assert href is not None
            assert href.startswith("/knowledge/qa/")

            page.reload()
            expect(results.first).to_contain_text("How long does shipping take?")
            expect(page.get_by_label("Search in")).to_have_value(re.compile("^collection:"))

            page.set_viewport_size(PHONE)  # type: ignore[arg-type]
            assert horizontal_overflow(page) == 0
            assert_accessible(page, where="the retrieval tester at phone width")
        assert errors == []
    finally:
        page.close()
