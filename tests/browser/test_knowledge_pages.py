"""The Knowledge pages in a real browser: a shop owner chooses two files with the file
input, sees each one's progress and outcome, and watches them turn ready without
reloading (the server's in-process worker indexes them); then writes a Q&A pair and
imports more, on a desktop and on a phone, with no accessibility violation or console
error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ViewportSize, expect
from sqlalchemy import text

from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.browser.conftest import run_async, sign_in
from tests.support.accessibility import (
    assert_fits_and_accessible,
    console_errors,
)
from tests.support.factories import make_organisation
from tests.support.server import LiveServer

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
def working_server(settings: Settings) -> Iterator[LiveServer]:
    """The app with its in-process worker, as `cybergine serve` runs it."""
    from cybergine.app import create_app

    with LiveServer(create_app(settings, run_worker=True)) as server:
        yield server


def _shop_owner(database_url: str) -> str:
    async def make() -> str:
        database = Database(database_url, pool_size=2)
        try:
            _, owner = await make_organisation(database, name="Linen Shop")
            return owner.email
        finally:
            await database.dispose()

    return run_async(make())


def _indexing_state(database_url: str) -> str:
    """What the worker did with the documents: which of them waited, on which job, after
    how many tries; read when they did not turn ready in time, to tell a slow index job
    from one that waited behind others or was retried."""

    async def read() -> str:
        database = Database(database_url, pool_size=1)
        try:
            async with database.autocommit() as session:
                items = await session.execute(
                    text("SELECT title, status, error, indexed_at FROM kb_items")
                )
                jobs = await session.execute(
                    text(
                        "SELECT j.id, j.task_name, j.status, j.attempts, j.scheduled_at,"
                        " array_agg(e.type || '@' || e.at::time ORDER BY e.at)"
                        " FROM procrastinate_jobs j"
                        " LEFT JOIN procrastinate_events e ON e.job_id = j.id"
                        " GROUP BY j.id ORDER BY j.id"
                    )
                )
                return "items:\n{}\njobs:\n{}\nnow: {}".format(
                    "\n".join(map(str, items)),
                    "\n".join(map(str, jobs)),
                    await session.scalar(text("SELECT clock_timestamp()::time")),
                )
        finally:
            await database.dispose()

    return run_async(read())


def test_the_knowledge_page_on_a_phone(
    chromium: Browser, working_server: LiveServer, database_url: str
) -> None:
    email = _shop_owner(database_url)
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, working_server.url, email)
    for path in ("/knowledge", "/knowledge/qa"):
        page.goto(f"{working_server.url}{path}")
        assert_fits_and_accessible(page, f"{path} on a phone")
    context.close()


def test_two_files_upload_with_progress_and_turn_ready_without_a_reload(
    chromium: Browser,
    working_server: LiveServer,
    database_url: str,
    tmp_path: Path,
    screenshots: Path,
) -> None:
    email = _shop_owner(database_url)
    returns = tmp_path / "returns.txt"
    returns.write_text("Returns\n\nYou can return any unworn item within 30 days.")
    shipping = tmp_path / "shipping.md"
    shipping.write_text("# Shipping\n\nWe ship to the EU and the UK in 3 to 5 working days.")

    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    with console_errors(page) as errors:
        sign_in(page, working_server.url, email)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Knowledge").click()
        expect(page.get_by_role("heading", name="Knowledge", level=1)).to_be_visible()
        expect(page.get_by_role("link", name="Test retrieval")).to_have_attribute(
            "href", "/knowledge/tester"
        )
        assert_fits_and_accessible(page, "/knowledge (empty)")

        # A page marker that a reload would lose: the statuses must change under it.
        page.evaluate("window.__sameDocument = true")
        page.get_by_label("Files").set_input_files([returns, shipping])
        page.get_by_role("button", name="Upload").click()

        files = page.get_by_test_id("upload-file")
        expect(files).to_have_count(2)
        for row in (files.nth(0), files.nth(1)):
            expect(row.locator("progress")).to_be_visible()
            expect(row).to_have_attribute("data-outcome", "accepted", timeout=20_000)
            expect(row).to_contain_text("Accepted")
        expect(page.locator("progress[aria-label='Upload of returns.txt']")).to_have_attribute(
            "value", "100"
        )

        rows = page.get_by_test_id("document-row")
        expect(rows).to_have_count(2)
        try:
            for row in (rows.nth(0), rows.nth(1)):
                expect(row.get_by_test_id("kb-status")).to_have_text("Ready", timeout=30_000)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_indexing_state(database_url)}") from exc
        assert page.evaluate("window.__sameDocument") is True
        assert_fits_and_accessible(page, "/knowledge (two documents)")
        page.screenshot(path=str(screenshots / "knowledge.png"))

        # The document's own page.
        rows.filter(has_text="returns.txt").get_by_role("link").click()
        expect(page.get_by_test_id("document-status")).to_contain_text("Ready")
        expect(page.get_by_test_id("download")).to_be_visible()
        assert_fits_and_accessible(page, "a document's page")

        # A Q&A pair, by keyboard.
        page.goto(f"{working_server.url}/knowledge/qa")
        page.get_by_label("Question", exact=True).fill("Do you ship abroad?")
        page.get_by_label("Other ways customers ask it").fill("Ship to Spain?\nShip to France?")
        page.get_by_label("Answer", exact=True).fill("Yes, to the EU and the UK.")
        page.get_by_label("Answer", exact=True).press("Tab")
        expect(page.get_by_label("Collection", exact=False).first).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name="Add")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_contain_text("Question added")
        pair = page.get_by_test_id("qa-row").first
        expect(pair).to_contain_text("Also asked as: Ship to Spain? · Ship to France?")
        expect(pair.get_by_test_id("kb-status")).to_have_text("Ready", timeout=30_000)

        # An import with one bad row: the report comes in place, the good rows are listed.
        faq = tmp_path / "faq.csv"
        faq.write_text("question,answer\nGift wrap?,Yes.\nNo answer,\nOpening hours?,9 to 5.\n")
        page.get_by_label("File (.csv or .jsonl)").set_input_files(faq)
        page.get_by_role("button", name="Import").click()
        report = page.get_by_test_id("import-report")
        expect(report).to_contain_text("Imported 2 new and updated 0; 1 row refused.")
        expect(report.get_by_test_id("import-error")).to_contain_text("Answer cannot be empty.")
        expect(page.get_by_test_id("qa-row")).to_have_count(3)
        assert_fits_and_accessible(page, "/knowledge/qa after an import")
    assert errors == []
    context.close()
