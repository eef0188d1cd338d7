"""The Knowledge gaps and Top questions pages in a real browser, with questions to show
(``tests/analytics/gap_history.py``, collected): no accessibility violation or console
error on a desktop and on a phone; a top question's conversations open in the inbox with
the way back; and "Answer this" opens the Q&A form with the question filled in; the pair
written, the group is marked answered."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ViewportSize, expect
from sqlalchemy import select

from cybergine.accounts.models import Role
from cybergine.conversations.models import Conversation
from cybergine.db.engine import Database
from cybergine.knowledge.embeddings import LocalMiniLM
from tests.analytics.gap_history import SHIPPING, ask, collect, seeded
from tests.browser.conftest import run_async, sign_in
from tests.support.accessibility import assert_fits_and_accessible, console_errors
from tests.support.factories import add_member
from tests.support.server import LiveServer

HOSTILE = "Pourquoi" + "x" * 300 + '<script>document.title="owned"</script>?'
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


def _seeded(database_url: str) -> tuple[str, str]:
    """An admin's e-mail and the page's path for the period of the history."""

    async def make() -> tuple[str, str]:
        database = Database(database_url, pool_size=2)
        try:
            minilm = LocalMiniLM()
            history, _ = await seeded(database, minilm)
            # A customer's long unbroken word and markup: wrapped, escaped, no script.
            async with database.transaction() as session:
                conversation = await session.scalar(
                    select(Conversation).where(
                        Conversation.organisation_id == history.organisation_id
                    )
                )
                assert conversation is not None
                await ask(session, conversation, datetime.now(UTC), HOSTILE)
            await collect(database, history.organisation_id, minilm)
            user, _ = await add_member(database, history.organisation_id, Role.ADMIN)
            today = datetime.now(UTC).date().isoformat()
            path = f"/analytics/knowledge-gaps?from={history.first.date().isoformat()}&to={today}"
            return user.email, path
        finally:
            await database.dispose()

    return run_async(make())


@pytest.mark.slow
def test_the_gaps_page_is_accessible_and_answer_this_fills_the_qa_form(
    chromium: Browser, live_server: LiveServer, database_url: str, screenshots: Path
) -> None:
    email, path = _seeded(database_url)
    top = path.replace("/knowledge-gaps?", "/top-questions?")
    for viewport in (DESKTOP, PHONE):
        context = chromium.new_context(viewport=viewport)
        page = context.new_page()
        with console_errors(page) as errors:
            sign_in(page, live_server.url, email)
            for shown, heading in ((path, "Knowledge gaps"), (top, "Top questions")):
                page.goto(f"{live_server.url}{shown}")
                expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
                assert_fits_and_accessible(page, f"{heading} at {viewport['width']} px")
                expect(page.get_by_text(HOSTILE).first).to_be_visible()
                assert page.title() != "owned"
        assert errors == []
        context.close()

    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, live_server.url, email)
    page.goto(f"{live_server.url}{top}")
    page.screenshot(path=screenshots / "top-questions.png")
    first = page.get_by_test_id("top-question").first
    expect(first.get_by_test_id("question-count")).to_have_text("6")
    first.get_by_role("link", name=re.compile(r"^The 4 conversations behind")).click()
    expect(page.get_by_test_id("drill-banner")).to_contain_text("a top question's questions")
    page.get_by_role("link", name="Back to top questions").click()
    expect(page.get_by_role("heading", name="Top questions", level=1)).to_be_visible()
    context.close()

    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, live_server.url, email)
    page.goto(f"{live_server.url}{path}")
    first = page.get_by_test_id("gap").first
    question = first.get_by_role("heading", level=2).inner_text().strip("“”")
    assert question in SHIPPING
    first.get_by_role("link", name="Answer this").click()
    expect(page).to_have_url(re.compile(r"/knowledge/qa\?"))
    expect(page.get_by_role("textbox", name="Question", exact=True)).to_have_value(question)
    assert_fits_and_accessible(page, "the Q&A form pre-filled from a gap")
    page.get_by_role("textbox", name="Answer", exact=True).fill(
        "Yes, we ship to Canada in 5 to 8 days."
    )
    page.get_by_role("button", name="Add").click()
    # The pair is saved once the form has gone back to the bare list (the form's own URL
    # is /knowledge/qa too, with the question in its query).
    expect(page).to_have_url(re.compile(r"/knowledge/qa$"))
    page.goto(f"{live_server.url}{path}")
    answered = page.get_by_test_id("gap").last
    expect(answered.get_by_role("heading", level=2)).to_have_text(f"“{question}”")
    expect(answered.get_by_test_id("gap-answered")).to_be_visible()
    context.close()
