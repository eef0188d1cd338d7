"""An organisation in its deletion grace period (policy §11): its people still sign in
and read, owners export its data or cancel the deletion, and nothing else is written;
its channels take no new messages."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, text

from cybergine.accounts.models import Membership, Role, User
from cybergine.accounts.service import organisations
from cybergine.app import create_app
from cybergine.channels.whatsapp.models import WebhookEvent
from cybergine.conversations.models import Direction, Message, MessageStatus
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, add_member
from tests.support.server import LiveServer
from tests.support.whatsapp import Shop

CLOSING = "urn:cybergine:problem:organisation-pending-deletion"
SHOP_SITE = "https://shop.example"
ADA = "15550001111"
GRACE = "15550002222"


async def _schedule_deletion(database: Database, organisation_id: uuid.UUID) -> None:
    async with database.transaction() as session:
        await organisations.schedule_deletion(session, organisation_id, grace=timedelta(days=30))


async def _owner(shop: Shop) -> Browser:
    async with shop.database.transaction() as session:
        email = await session.scalar(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.organisation_id == shop.organisation_id)
        )
    browser = Browser(str(shop.api.base_url))
    assert email is not None
    assert browser.sign_in(email, PASSWORD).status_code == 303
    return browser


def _api(browser: Browser, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The API as the dashboard's own scripts call it: the session cookie and its token."""
    token = browser.csrf("/")
    headers = {"x-csrf-token": token, "accept": "application/json"}
    return browser.http.request(method, path, headers=headers, **kwargs)


async def test_owners_read_export_and_cancel_but_change_nothing_else(shop: Shop) -> None:
    owner = await _owner(shop)
    await _schedule_deletion(shop.database, shop.organisation_id)

    # Reads work, and every page says why nothing can be changed.
    home = owner.get("/")
    assert home.status_code == 200
    assert "read-only until then" in home.text
    assert "data-read-only" in home.text
    assert owner.get("/inbox").status_code == 200
    assert _api(owner, "GET", "/api/v1/organisation").json()["status"] == "pending_deletion"

    # Writes are refused, in the API as problem+json and in the dashboard as a page.
    renamed = _api(owner, "PATCH", "/api/v1/organisation", json={"name": "Renamed"})
    assert renamed.status_code == 423
    assert renamed.headers["content-type"].startswith("application/problem+json")
    assert renamed.json()["type"] == CLOSING
    assert "read-only" in renamed.json()["detail"]
    assert renamed.json()["erase_after"]
    created = _api(owner, "POST", "/api/v1/assistants", json={"name": "Late"})
    assert created.status_code == 423
    form = owner.post("/settings", {"name": "Renamed"}, csrf_from="/settings")
    assert form.status_code == 423
    assert "read-only" in form.text
    assert _api(owner, "GET", "/api/v1/organisation").json()["name"] != "Renamed"
    # The organisation's API keys stopped working with the deletion.
    assert shop.api.get("/api/v1/organisation").status_code == 401

    # The owner's export is still allowed, through the API or the settings page.
    requested = _api(owner, "POST", "/api/v1/organisation/export")
    assert requested.status_code == 202, requested.text
    await shop.work()
    settings_page = owner.get("/settings")
    [export_id] = re.findall(r'action="/settings/export/([0-9a-f-]+)/download"', settings_page.text)
    assert export_id == requested.json()["id"]
    link = owner.post(f"/settings/export/{export_id}/download", csrf_from="/settings")
    assert link.status_code == 303
    downloaded = owner.get(link.headers["location"])
    assert downloaded.status_code == 200
    assert downloaded.content.startswith(b"PK")
    assert owner.get(link.headers["location"]).status_code == 404  # single use

    # Cancelling the deletion still works, and with it every write again.
    cancelled = owner.post("/settings/delete/cancel", csrf_from="/settings")
    assert cancelled.status_code == 303
    again = _api(owner, "PATCH", "/api/v1/organisation", json={"name": "Renamed"})
    assert again.status_code == 200, again.text
    assert "data-read-only" not in owner.get("/").text
    owner.close()


async def test_every_role_is_read_only_and_only_owners_export(shop: Shop) -> None:
    agent, _ = await add_member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("Hello?")
    await shop.work()
    [conversation] = shop.conversations()
    await _schedule_deletion(shop.database, shop.organisation_id)
    browser = Browser(str(shop.api.base_url))
    assert browser.sign_in(agent.email, PASSWORD).status_code == 303
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    assert _api(browser, "GET", path).status_code == 200
    reply = _api(browser, "POST", path, json={"text": "We are closing."})
    assert reply.status_code == 423
    assert reply.json()["type"] == CLOSING
    assert _api(browser, "POST", "/api/v1/organisation/export").status_code == 403
    browser.close()


def test_the_api_document_promises_423_for_writes_only(settings: Settings) -> None:
    document = create_app(settings, run_worker=False).openapi()
    paths = document["paths"]
    assert "423" in paths["/api/v1/organisation"]["patch"]["responses"]
    assert "423" not in paths["/api/v1/organisation"]["get"]["responses"]
    assert "423" not in paths["/api/v1/organisation/export"]["post"]["responses"]


async def _count(database: Database, model: type[Message] | type[WebhookEvent]) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_whatsapp_deliveries_are_acknowledged_and_dropped(shop: Shop) -> None:
    await _schedule_deletion(shop.database, shop.organisation_id)
    shop.says("Is anyone there?", wa_id="15550009999")
    await shop.work()
    assert await _count(shop.database, Message) == 0
    assert await _count(shop.database, WebhookEvent) == 0
    assert shop.graph.sent == []

    async with shop.database.transaction() as session:
        await organisations.cancel_deletion(session, shop.organisation_id)
    shop.says("Is anyone there now?", wa_id="15550008888")
    await shop.work()
    assert await _count(shop.database, Message) >= 1


async def test_the_widget_says_the_chat_is_no_longer_available(
    shop: Shop, live_server: LiveServer
) -> None:
    created = shop.api.post(
        "/api/v1/assistants", json={"name": "Web", "allowed_origins": [SHOP_SITE]}
    )
    assert created.status_code == 201, created.text
    key = created.json()["widget_key"]
    with live_server.client(headers={"Origin": SHOP_SITE}) as http:
        started = http.post("/widget/v1/session", json={"widget_key": key})
        assert started.status_code == 200, started.text
        token = started.json()["visitor_token"]
        await _schedule_deletion(shop.database, shop.organisation_id)
        refused = http.post("/widget/v1/session", json={"widget_key": key})
        assert refused.status_code == 423
        assert refused.json()["type"] == CLOSING
        assert refused.json()["detail"] == "This chat is no longer available."
        said = http.post(
            "/widget/v1/messages",
            json={"text": "hello", "client_id": uuid.uuid4().hex},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert said.status_code == 423, said.text
        assert await _count(shop.database, Message) == 0


async def test_jobs_queued_before_the_deletion_send_nothing_and_cancelling_resumes(
    shop: Shop,
) -> None:
    """Policy §11: from the moment the deletion is scheduled nothing goes out, not even
    what was queued before: a customer's message waiting for its reply job, or a
    person's message waiting for its delivery job (failed, with the reason, so the team
    sees it was not sent). Cancelling the deletion brings the assistant back."""
    shop.says("Hello?", wa_id=ADA)
    await shop.work()
    assert len(shop.sent_to(ADA)) == 1
    [conversation] = shop.conversations()
    posted = shop.api.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"text": "A person will call you tomorrow."},
    )
    assert posted.status_code == 202, posted.text
    shop.says("What is your return policy?", wa_id=GRACE)  # its reply job waits
    async with shop.database.transaction() as session:
        waiting = await session.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")
        )
    assert waiting == 2  # the delivery of the person's message, the reply to GRACE

    await _schedule_deletion(shop.database, shop.organisation_id)
    await shop.work()
    assert shop.sent_to(GRACE) == []
    assert len(shop.sent_to(ADA)) == 1
    async with shop.database.transaction() as session:
        outbound = (
            await session.execute(
                select(Message.text, Message.status, Message.error_title)
                .where(Message.direction == Direction.OUTBOUND)
                .order_by(Message.id)
            )
        ).all()
    [(_, greeting_status, _), (text_, status, error)] = outbound
    assert greeting_status is not MessageStatus.FAILED
    assert (text_, status) == ("A person will call you tomorrow.", MessageStatus.FAILED)
    assert error is not None
    assert "scheduled for deletion" in error

    async with shop.database.transaction() as session:
        await organisations.cancel_deletion(session, shop.organisation_id)
    shop.says("Do you ship abroad?", wa_id=GRACE)
    await shop.work()
    assert len(shop.sent_to(GRACE)) == 1
