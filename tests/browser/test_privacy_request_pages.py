"""The Privacy requests pages in a real browser: a shop owner sees an overdue request
first, is told to verify the person before carrying it out, verifies them, corrects the
customer's name and number, and finds the request done with its trail; with no
accessibility violation or console error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser, ViewportSize, expect

from cybergine.accounts.models import Role
from cybergine.accounts.principal import Principal
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.privacy import requests
from cybergine.privacy.request_models import RequestChannel, RequestKind
from tests.browser.conftest import run_async, sign_in
from tests.support.accessibility import assert_fits_and_accessible, console_errors
from tests.support.conversations import make_conversation, make_customer, make_message
from tests.support.factories import make_organisation
from tests.support.server import LiveServer

DESKTOP: ViewportSize = {"width": 1280, "height": 800}


def _shop_with_requests(database_url: str) -> str:
    """Ada asked by e-mail 40 days ago to correct her details, and today to erase them."""

    async def make() -> str:
        database = Database(database_url, pool_size=2)
        try:
            organisation, owner = await make_organisation(database, name="Corner Shop")
            async with database.transaction() as session:
                ada = await make_customer(
                    session, organisation.id, external_id="4915123456789", display_name="Ada L."
                )
                conversation = await make_conversation(session, organisation.id, customer=ada)
                await make_message(session, conversation, text="Where is my parcel?")
                scope = TenantScope(session, organisation.id)
                actor = Principal(organisation.id, Role.OWNER, user_id=owner.id).actor
                await requests.open_request(
                    scope,
                    actor,
                    kind=RequestKind.ERASURE,
                    channel=RequestChannel.WHATSAPP,
                    customer_id=ada.id,
                )
                await requests.open_request(
                    scope,
                    actor,
                    kind=RequestKind.RECTIFICATION,
                    channel=RequestChannel.EMAIL,
                    customer_id=ada.id,
                    received_at=datetime.now(UTC) - timedelta(days=40),
                )
            return owner.email
        finally:
            await database.dispose()

    return run_async(make())


def test_a_shop_owner_answers_an_overdue_rectification_request(
    chromium: Browser, live_server: LiveServer, database_url: str
) -> None:
    email = _shop_with_requests(database_url)
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    with console_errors(page) as errors:
        sign_in(page, live_server.url, email)
        main = page.get_by_role("navigation", name="Main")
        main.get_by_role("link", name="Privacy requests").click()
        expect(page.get_by_role("heading", name="Privacy requests", level=1)).to_be_visible()
        expect(page.get_by_test_id("overdue-banner")).to_contain_text("1 overdue")
        rows = page.get_by_test_id("privacy-request-row")
        expect(rows).to_have_count(2)
        # The overdue one leads.
        expect(rows.first).to_have_attribute("data-overdue", "true")
        expect(rows.first).to_contain_text("Rectification")
        assert_fits_and_accessible(page, "the list of privacy requests")

        rows.first.get_by_role("link").click()
        expect(page.get_by_test_id("request-kind")).to_contain_text("Rectification")
        expect(page.get_by_test_id("overdue-flag")).to_be_visible()
        assert_fits_and_accessible(page, "a privacy request")

        # Not before the person is verified.
        page.get_by_label("Their name").fill("Ada Lovelace")
        page.get_by_test_id("carry-out").click()
        expect(page.get_by_test_id("request-error")).to_contain_text("Verify the person")
        expect(page.get_by_test_id("request-status")).to_have_text("Open")

        page.get_by_label("How you know").select_option("known_details")
        page.get_by_role("button", name="It is them").click()
        expect(page.get_by_role("status")).to_contain_text("Request updated")
        expect(page.get_by_test_id("request-verification")).to_contain_text("Verified")

        page.get_by_label("Their name").fill("Ada Lovelace")
        page.get_by_label("Their phone number").fill("+49 151 2345 6780")
        page.get_by_test_id("carry-out").click()
        expect(page.get_by_role("status")).to_contain_text("carried out")
        expect(page.get_by_test_id("request-status")).to_have_text("Done")
        expect(page.get_by_test_id("request-customer")).to_contain_text("Ada Lovelace")
        expect(page.get_by_test_id("request-customer")).to_contain_text("+4915123456780")
        trail = page.get_by_test_id("request-trail")
        expect(trail).to_contain_text("Their details were corrected")
        expect(trail).to_contain_text("Identity checked")
        expect(page.get_by_test_id("carry-out")).to_have_count(0)
        assert_fits_and_accessible(page, "a request carried out")

        page.get_by_role("link", name="← Privacy requests").click()
        expect(page.get_by_test_id("overdue-banner")).to_have_count(0)
        expect(page.get_by_test_id("privacy-request-row").first).to_contain_text("Erasure")
    # The refused carry-out answers 409, which Chromium logs as a failed load.
    refused = "Failed to load resource: the server responded with a status of 409"
    assert [e for e in errors if not e.startswith(refused)] == [], "\n".join(errors)
    context.close()
