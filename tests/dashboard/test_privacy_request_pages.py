"""Privacy requests in the dashboard, over real HTTP: recording one that came by e-mail,
readable refusals of bad input, an access request answered with the export download,
a refusal with its reason, and who may see the pages."""

from __future__ import annotations

import json
import re
import uuid

from sqlalchemy import select

from cybergine.accounts.models import Role
from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from tests.support.conversations import make_conversation, make_customer, make_message
from tests.support.factories import make_organisation
from tests.support.inbox import has_testid, member, signed_in
from tests.support.server import LiveServer

_ROW = re.compile(r'data-testid="privacy-request-row" data-request-id="([0-9a-f-]+)"')


async def _shop(database: Database) -> tuple[uuid.UUID, str, uuid.UUID]:
    organisation, owner = await make_organisation(database, name="Corner Shop")
    async with database.transaction() as session:
        ada = await make_customer(
            session, organisation.id, external_id="4915123456789", display_name="Ada Lovelace"
        )
        conversation = await make_conversation(session, organisation.id, customer=ada)
        await make_message(session, conversation, text="Where is my parcel?")
    return organisation.id, owner.email, ada.id


async def test_a_request_by_email_is_recorded_and_answered_with_the_export(
    database: Database, live_server: LiveServer
) -> None:
    organisation_id, _, ada = await _shop(database)
    owner = await member(database, organisation_id, Role.ADMIN)
    with signed_in(live_server.url, owner) as browser:
        listing = browser.get("/privacy/requests")
        assert listing.status_code == 200
        assert "No requests" in listing.text

        # Bad input is explained on the page.
        refused = browser.post(
            "/privacy/requests",
            {"kind": "erasure", "customer_id": "Ada", "channel": "email"},
            csrf_from="/privacy/requests",
        )
        assert refused.status_code == 422
        assert has_testid(refused.text, "record-error")
        assert "customer&#39;s id" in refused.text
        strange = browser.post(
            "/privacy/requests",
            {"kind": "everything", "customer_id": str(ada), "channel": "email"},
            csrf_from="/privacy/requests",
        )
        assert strange.status_code == 422
        assert "Choose one of the options" in strange.text

        recorded = browser.post(
            "/privacy/requests",
            {"kind": "access", "customer_id": str(ada), "channel": "email"},
            csrf_from="/privacy/requests",
        )
        assert recorded.status_code == 303, recorded.text
        page_url = recorded.headers["location"].split("?")[0]
        [request_id] = _ROW.findall(browser.get("/privacy/requests").text)
        assert page_url == f"/privacy/requests/{request_id}"

        page = browser.get(page_url)
        assert "Ada Lovelace" in page.text
        assert "E-mail" in page.text
        # Carrying out before verifying is refused, readably.
        early = browser.post(f"{page_url}/carry-out", {}, csrf_from=page_url)
        assert early.status_code == 409
        assert "Verify the person" in early.text
        verified = browser.post(
            f"{page_url}/verify",
            {"verification": "verified", "method": "document"},
            csrf_from=page_url,
        )
        assert verified.status_code == 303
        download = browser.post(f"{page_url}/carry-out", {}, csrf_from=page_url)
        assert download.status_code == 200
        assert "attachment" in download.headers["content-disposition"]
        assert json.loads(download.text)["customer"]["display_name"] == "Ada Lovelace"
        done = browser.get(page_url)
        assert re.search(r'data-testid="request-status">\s*Done', done.text)
        assert "Request recorded" in done.text


async def test_a_request_is_refused_with_a_reason_and_stays_closed(
    database: Database, live_server: LiveServer
) -> None:
    organisation_id, _, ada = await _shop(database)
    owner = await member(database, organisation_id, Role.OWNER)
    with signed_in(live_server.url, owner) as browser:
        browser.post(
            "/privacy/requests",
            {"kind": "erasure", "customer_id": str(ada), "channel": "dashboard"},
            csrf_from="/privacy/requests",
        )
        [request_id] = _ROW.findall(browser.get("/privacy/requests").text)
        page_url = f"/privacy/requests/{request_id}"
        no_reason = browser.post(
            f"{page_url}/status", {"status": "refused", "refusal_reason": ""}, csrf_from=page_url
        )
        assert no_reason.status_code == 422
        refused = browser.post(
            f"{page_url}/status",
            {"status": "refused", "refusal_reason": "legal_retention"},
            csrf_from=page_url,
        )
        assert refused.status_code == 303
        page = browser.get(page_url).text
        assert "Refused: The law requires us to keep the data" in page
        assert not has_testid(page, "carry-out")
        again = browser.post(
            f"{page_url}/status",
            {"status": "done", "refusal_reason": ""},
            csrf_from="/privacy/requests",
        )
        assert again.status_code == 409
    async with database.transaction() as session:
        entries = list(
            (
                await session.execute(
                    select(AuditEvent.action, AuditEvent.details).where(
                        AuditEvent.target_id == request_id
                    )
                )
            ).all()
        )
    assert [action for action, _ in entries] == [
        "privacy.request.opened",
        "privacy.request.status_changed",
    ]
    assert entries[-1][1]["refusal_reason"] == "legal_retention"


async def test_only_those_who_manage_customer_data_see_the_pages(
    database: Database, live_server: LiveServer
) -> None:
    organisation_id, _, _ = await _shop(database)
    agent = await member(database, organisation_id, Role.AGENT)
    with signed_in(live_server.url, agent) as browser:
        assert browser.get("/privacy/requests").status_code == 403
        assert "/privacy/requests" not in browser.get("/").text


async def test_a_staff_users_own_request_is_recorded_and_closed_by_hand(
    database: Database, live_server: LiveServer
) -> None:
    organisation_id, _, _ = await _shop(database)
    owner = await member(database, organisation_id, Role.OWNER)
    agent = await member(database, organisation_id, Role.AGENT)
    with signed_in(live_server.url, owner) as browser:
        listing = browser.get("/privacy/requests").text
        assert agent.name in listing
        neither = browser.post(
            "/privacy/requests",
            {"kind": "access", "customer_id": "", "user_id": "", "channel": "email"},
            csrf_from="/privacy/requests",
        )
        assert neither.status_code == 422
        assert "choose a member" in neither.text
        recorded = browser.post(
            "/privacy/requests",
            {"kind": "access", "customer_id": "", "user_id": str(agent.id), "channel": "email"},
            csrf_from="/privacy/requests",
        )
        assert recorded.status_code == 303, recorded.text
        page_url = recorded.headers["location"].split("?")[0]
        page = browser.get(page_url).text
        assert agent.name in page
        assert not has_testid(page, "carry-out")  # they act on their own Account page
        browser.post(
            f"{page_url}/verify",
            {"verification": "verified", "method": "signed_in"},
            csrf_from=page_url,
        )
        done = browser.post(
            f"{page_url}/status", {"status": "done", "refusal_reason": ""}, csrf_from=page_url
        )
        assert done.status_code == 303
        assert re.search(r'data-testid="request-status">\s*Done', browser.get(page_url).text)
