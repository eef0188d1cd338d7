"""An owner during the organisation's deletion grace, in a real browser: the banner on
every page, forms that would change something shown disabled, the export prepared and
downloaded from Settings, and the deletion cancelled, after which the forms work again."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Browser, ViewportSize, expect

from cybergine.accounts.service import organisations
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.browser.conftest import run_async, sign_in
from tests.support.accessibility import assert_fits_and_accessible, console_errors
from tests.support.conversations import make_conversation, make_customer, make_message
from tests.support.factories import make_organisation
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

DESKTOP: ViewportSize = {"width": 1280, "height": 800}


def _closing_shop(database_url: str) -> str:
    """A shop with one conversation, scheduled for deletion; the owner's e-mail."""

    async def make() -> str:
        database = Database(database_url, pool_size=2)
        try:
            organisation, owner = await make_organisation(database, name="Closing Shop")
            async with database.transaction() as session:
                ada = await make_customer(
                    session, organisation.id, external_id="4915123456789", display_name="Ada"
                )
                conversation = await make_conversation(session, organisation.id, customer=ada)
                await make_message(session, conversation, text="Where is my parcel?")
                await organisations.schedule_deletion(
                    session, organisation.id, grace=timedelta(days=30)
                )
            return owner.email
        finally:
            await database.dispose()

    return run_async(make())


def _run_jobs(database_url: str, settings: Settings) -> None:
    async def run() -> None:
        database = Database(database_url, pool_size=2)
        try:
            await run_jobs(database, settings)
        finally:
            await database.dispose()

    run_async(run())


def test_an_owner_exports_during_the_grace_and_cancels_the_deletion(
    chromium: Browser,
    live_server: LiveServer,
    database_url: str,
    settings: Settings,
    screenshots: Path,
) -> None:
    email = _closing_shop(database_url)
    context = chromium.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    with console_errors(page) as errors:
        sign_in(page, live_server.url, email)
        banner = page.get_by_role("alert").filter(has_text="read-only until then")
        expect(banner).to_be_visible()

        page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
        expect(page.get_by_role("heading", name="Organisation settings")).to_be_visible()
        expect(banner).to_be_visible()
        # Renaming would change the organisation: shown disabled.
        expect(page.get_by_role("button", name="Save")).to_be_disabled()
        expect(page.get_by_label("Name")).to_be_disabled()
        # What an owner still does: the export, and cancelling the deletion.
        page.get_by_role("button", name="Prepare an export").click()
        expect(page.get_by_role("status")).to_contain_text("Your export is being prepared")
        expect(page.get_by_role("button", name="Prepare an export")).to_be_enabled()

        _run_jobs(database_url, settings)
        page.reload()
        assert_fits_and_accessible(page, "the settings page during the grace")
        page.screenshot(path=str(screenshots / "deletion-grace.png"), full_page=True)
        with page.expect_download() as waiting:
            page.get_by_role("button", name="Download").click()
        download = waiting.value
        assert download.suggested_filename.startswith("organisation-export-")
        with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            messages = archive.read("messages.jsonl").decode()
        assert "Where is my parcel?" in messages
        assert {entry["path"] for entry in manifest["files"]} >= {"messages.jsonl"}
        page.reload()
        expect(page.get_by_role("button", name="Download")).to_have_count(0)

        page.get_by_role("button", name="Cancel the deletion").click()
        expect(page.get_by_role("status")).to_contain_text("Deletion cancelled")
        expect(banner).to_have_count(0)
        expect(page.get_by_role("button", name="Save")).to_be_enabled()
    assert errors == [], "\n".join(errors)
    context.close()
