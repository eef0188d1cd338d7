"""The Customers pages in a real browser: a shop owner finds a customer by the phone
number as people write it, opens their page, downloads their data and erases them with
the typed confirmation, then finds their conversation closed and labelled in the inbox;
on a desktop and on a phone, with no accessibility violation or console error."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, ViewportSize, expect

from cybergine.db.engine import Database
from tests.browser.conftest import run_async, sign_in
from tests.support.accessibility import (
    assert_fits_and_accessible,
    console_errors,
)
from tests.support.conversations import make_conversation, make_customer, make_message
from tests.support.factories import make_organisation
from tests.support.server import LiveServer

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


def _shop_with_customers(database_url: str) -> str:
    """A shop where Ada wrote on WhatsApp and a web visitor too; the owner's e-mail."""

    async def make() -> str:
        database = Database(database_url, pool_size=2)
        try:
            organisation, owner = await make_organisation(database, name="Corner Shop")
            wrote = datetime.now(UTC) - timedelta(minutes=30)
            async with database.transaction() as session:
                ada = await make_customer(
                    session,
                    organisation.id,
                    external_id="4915123456789",
                    display_name="Ada Lovelace",
                    opted_in_at=wrote,
                    opt_in_source="customer_message",
                )
                conversation = await make_conversation(
                    session,
                    organisation.id,
                    customer=ada,
                    last_inbound_at=wrote,
                    last_message_at=wrote,
                )
                await make_message(session, conversation, text="Where is my parcel?")
                await make_customer(
                    session,
                    organisation.id,
                    external_id="3f9a1c2e7b5d4a6f8e0c1b2a3d4e5f60",
                    display_name=None,
                    phone_number=None,
                )
            return owner.email
        finally:
            await database.dispose()

    return run_async(make())


def test_a_shop_owner_finds_a_customer_exports_and_erases_their_data(
    chromium: Browser, live_server: LiveServer, database_url: str, screenshots: Path
) -> None:
    email = _shop_with_customers(database_url)
    context = chromium.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    with console_errors(page) as errors:
        sign_in(page, live_server.url, email)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
        expect(page.get_by_role("heading", name="Customers", level=1)).to_be_visible()
        expect(page.get_by_test_id("customer-row")).to_have_count(2)
        assert_fits_and_accessible(page, "the customer list")

        # Typing searches as they go: the number as people write it finds her.
        search = page.get_by_label("Name, phone number or visitor id")
        search.fill("+49 151 2345 6789")
        expect(page.get_by_test_id("customer-row")).to_have_count(1)
        expect(page).to_have_url(re.compile(r"/customers\?q=%2B49(\+|%20)151"))  # kept in history
        page.screenshot(path=str(screenshots / "customers.png"), full_page=True)
        page.get_by_role("link", name="Ada Lovelace").click()

        expect(page.get_by_role("heading", name="Ada Lovelace", level=1)).to_be_visible()
        expect(page.get_by_test_id("consent-state")).to_have_text("Opted in")
        assert_fits_and_accessible(page, "the customer's page")

        with page.expect_download() as waiting:
            page.get_by_role("button", name="Download their data (JSON)").click()
        download = waiting.value
        assert download.suggested_filename.startswith("customer-")
        exported = json.loads(Path(download.path()).read_text())
        assert exported["customer"]["display_name"] == "Ada Lovelace"

        # A wrong confirmation is explained next to the field, by keyboard.
        confirmation = page.get_by_label("Type Ada Lovelace to confirm")
        confirmation.fill("Ada")
        confirmation.press("Enter")
        expect(page.get_by_label("Type Ada Lovelace to confirm")).to_have_attribute(
            "aria-invalid", "true"
        )
        expect(page.locator("#erase-confirmation-error")).to_contain_text("exactly as shown")
        assert_fits_and_accessible(page, "the refused erasure")

        page.get_by_label("Type Ada Lovelace to confirm").fill("Ada Lovelace")
        page.get_by_role("button", name="Erase their data").click()
        expect(page.get_by_role("status")).to_contain_text("Their data is erased")
        expect(page.get_by_role("heading", name="Erased customer", level=1)).to_be_visible()
        expect(page.get_by_role("button", name="Erase their data")).to_have_count(0)
        assert_fits_and_accessible(page, "the erased customer's page")

        # Their conversation: closed, labelled, and nothing to answer with.
        page.get_by_test_id("customer-conversation").get_by_role("link").click()
        expect(page.get_by_role("heading", name="Erased customer", level=1)).to_be_visible()
        expect(page.get_by_test_id("conversation-state")).to_have_text("Closed")
        expect(page.get_by_test_id("erased-customer")).to_be_visible()
        expect(page.get_by_test_id("reply-text")).to_have_count(0)
        assert_fits_and_accessible(page, "the erased customer's conversation")

        # At phone width the pages still fit.
        page.set_viewport_size(PHONE)
        page.goto(f"{live_server.url}/customers")
        expect(page.get_by_test_id("customer-row")).to_have_count(2)
        assert_fits_and_accessible(page, "the customer list on a phone")
    # The refused erasure answers 422 (the house rule for a form sent back with an error),
    # which Chromium logs as a failed load; nothing else may appear.
    refused = "Failed to load resource: the server responded with a status of 422"
    assert [e for e in errors if not e.startswith(refused)] == [], "\n".join(errors)
    context.close()
