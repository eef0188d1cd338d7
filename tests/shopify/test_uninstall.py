"""app/uninstalled: a soft delete at once. The shop's tokens are destroyed, its queued
jobs cancelled, and its organisation hidden from every surface (the dashboard, the API,
the widget) until the app is installed again (``restore_shop``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, text

from cybergine.accounts.models import Membership, Organisation, OrganisationStatus, Role, User
from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from cybergine.settings import Settings
from cybergine.shopify.models import DeliveryStatus, ShopifyShop, ShopStatus
from cybergine.shopify.uninstall import restore_shop
from tests.shopify.webhook_support import (
    ConnectedShop,
    connect_shop,
    deliver,
    deliveries,
    fixture_payload,
    shopify_settings,
)
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, make_api_key, make_organisation
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

STOREFRONT = "https://storefront.example"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return shopify_settings(settings)


class Surfaces:
    """What a shop's organisation shows: its API (a key), its dashboard (its owner
    signed in) and its storefront widget (the assistant's key)."""

    def __init__(self, server: LiveServer, connected: ConnectedShop, api_key: str) -> None:
        self.server = server
        self.connected = connected
        self.api = server.client(headers={"authorization": f"Bearer {api_key}"})
        created = self.api.post(
            "/api/v1/assistants", json={"name": "Mia", "allowed_origins": [STOREFRONT]}
        )
        assert created.status_code == 201, created.text
        self.widget_key = created.json()["widget_key"]
        self.owner = Browser(server.url)
        assert self.owner.sign_in(connected.owner_email, PASSWORD).status_code in (200, 303)

    def close(self) -> None:
        self.api.close()
        self.owner.close()

    def api_answer(self) -> httpx.Response:
        return self.api.get("/api/v1/assistants")

    def dashboard_answer(self) -> httpx.Response:
        return self.owner.get("/")

    def widget_answer(self) -> httpx.Response:
        return httpx.post(
            f"{self.server.url}/widget/v1/session",
            json={"widget_key": self.widget_key, "visitor_token": None},
            headers={"Origin": STOREFRONT},
        )


@pytest.fixture
async def surfaces(live_server: LiveServer, database: Database) -> Iterator[Surfaces]:
    connected = await connect_shop(database)
    key = await make_api_key(database, connected.organisation.id)
    opened = Surfaces(live_server, connected, key)
    yield opened
    opened.close()


async def _queue_job(database: Database, task: str, **args: str) -> int:
    """A job as another part of the app queues it, due later so no worker takes it now."""
    async with database.transaction() as session:
        job_id = await session.scalar(
            text(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args, scheduled_at) "
                "VALUES ('default', :task, CAST(:args AS jsonb), :at) RETURNING id"
            ),
            {"task": task, "args": json.dumps(args), "at": datetime.now(UTC) + timedelta(hours=1)},
        )
    return int(job_id)


async def _job_status(database: Database, job_id: int) -> str:
    async with database.transaction() as session:
        return str(
            await session.scalar(
                text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
            )
        )


async def _uninstall(server: LiveServer, database: Database, settings: Settings, shop: str) -> None:
    body = fixture_payload("app_uninstalled_01.json", shop)
    answer = deliver(server.url, body, topic="app/uninstalled", shop=shop)
    assert answer.status_code == 200, answer.text
    await run_jobs(database, settings)


async def test_the_shop_is_hidden_from_every_surface_at_once(
    live_server: LiveServer, database: Database, settings: Settings, surfaces: Surfaces
) -> None:
    connected = surfaces.connected
    assert surfaces.api_answer().status_code == 200
    assert surfaces.dashboard_answer().status_code == 200
    assert surfaces.widget_answer().status_code == 200

    await _uninstall(live_server, database, settings, connected.domain)

    api = surfaces.api_answer()
    assert api.status_code == 403
    assert api.headers["content-type"] == "application/problem+json"
    assert api.json()["type"].endswith("shop-uninstalled")
    assert "uninstalled the Cybergine app" in api.json()["detail"]
    page = surfaces.dashboard_answer()
    assert page.status_code == 403
    assert "uninstalled the Cybergine app" in page.text
    assert "Mia" not in page.text
    # Signing in again leads to the same page, not to the shop's data.
    again = Browser(live_server.url)
    try:
        again.sign_in(connected.owner_email, PASSWORD)
        assert again.get("/").status_code == 403
        assert again.get("/inbox").status_code == 403
    finally:
        again.close()
    widget = surfaces.widget_answer()
    # widget.js shows nothing at all when its session is refused with a 4xx.
    assert widget.status_code == 423
    assert widget.json()["detail"] == "This chat is no longer available."
    assert "Mia" not in widget.text


async def test_the_tokens_are_destroyed_and_the_shop_marked_uninstalled(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    connected = await connect_shop(database)
    before = datetime.now(UTC)
    await _uninstall(live_server, database, settings, connected.domain)
    async with database.transaction() as session:
        raw = (
            await session.execute(
                text(
                    "SELECT status, access_token, refresh_token, access_token_expires_at, "
                    "refresh_token_expires_at, uninstalled_at FROM shopify_shops WHERE id = :id"
                ),
                {"id": connected.shop.id},
            )
        ).one()
        organisation = await session.get(Organisation, connected.organisation.id)
        assert organisation is not None
        assert organisation.status is OrganisationStatus.SHOP_UNINSTALLED
    assert raw.status == ShopStatus.UNINSTALLED.value
    assert (raw.access_token, raw.refresh_token) == (None, None)
    assert (raw.access_token_expires_at, raw.refresh_token_expires_at) == (None, None)
    assert raw.uninstalled_at >= before
    (delivery,) = await deliveries(database)
    assert delivery.status is DeliveryStatus.PROCESSED


async def test_the_shops_queued_jobs_are_cancelled_and_no_one_elses(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    connected, other = await connect_shop(database), await connect_shop(database)
    by_shop = await _queue_job(database, "shopify:sync", shop_id=str(connected.shop.id))
    by_organisation = await _queue_job(
        database, "shopify:sync", organisation_id=str(connected.organisation.id)
    )
    other_shop = await _queue_job(database, "shopify:sync", shop_id=str(other.shop.id))
    not_shopify = await _queue_job(database, "knowledge:index_item", item_id=str(uuid.uuid4()))
    await _uninstall(live_server, database, settings, connected.domain)
    assert await _job_status(database, by_shop) == "cancelled"
    assert await _job_status(database, by_organisation) == "cancelled"
    assert await _job_status(database, other_shop) == "todo"
    assert await _job_status(database, not_shopify) == "todo"


async def test_another_organisation_is_untouched(
    live_server: LiveServer, database: Database, settings: Settings, surfaces: Surfaces
) -> None:
    stranger = await connect_shop(database)
    await _uninstall(live_server, database, settings, stranger.domain)
    assert surfaces.api_answer().status_code == 200
    assert surfaces.dashboard_answer().status_code == 200
    assert surfaces.widget_answer().status_code == 200


async def test_a_redelivered_uninstall_changes_nothing_more(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    connected = await connect_shop(database)
    await _uninstall(live_server, database, settings, connected.domain)
    async with database.transaction() as session:
        first = await session.scalar(
            select(ShopifyShop.uninstalled_at).where(ShopifyShop.id == connected.shop.id)
        )
    # Shopify retries with the same webhook id; a second uninstall has a new one.
    await _uninstall(live_server, database, settings, connected.domain)
    async with database.transaction() as session:
        second = await session.scalar(
            select(ShopifyShop.uninstalled_at).where(ShopifyShop.id == connected.shop.id)
        )
        audited = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.action == "shopify.shop.uninstalled",
                AuditEvent.organisation_id == connected.organisation.id,
            )
        )
    assert first == second
    assert audited == 1


async def test_a_catalogue_change_after_the_uninstall_is_ignored(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    connected = await connect_shop(database)
    await _uninstall(live_server, database, settings, connected.domain)
    answer = deliver(
        live_server.url,
        b'{"id": 1, "title": "Late"}',
        topic="products/update",
        shop=connected.domain,
    )
    assert answer.json() == {"status": "received"}
    await run_jobs(database, settings)
    statuses = {d.topic: d.status for d in await deliveries(database, connected.shop.id)}
    assert statuses["products/update"] is DeliveryStatus.IGNORED


async def test_installing_again_restores_every_surface(
    live_server: LiveServer, database: Database, settings: Settings, surfaces: Surfaces
) -> None:
    connected = surfaces.connected
    await _uninstall(live_server, database, settings, connected.domain)
    assert surfaces.api_answer().status_code == 403
    async with database.transaction() as session:
        shop = await session.get(ShopifyShop, connected.shop.id)
        assert shop is not None
        await restore_shop(session, shop)
    assert surfaces.api_answer().status_code == 200
    assert surfaces.dashboard_answer().status_code == 200
    assert surfaces.widget_answer().status_code == 200
    async with database.transaction() as session:
        shop = await session.get(ShopifyShop, connected.shop.id)
        assert shop is not None
        assert shop.status is ShopStatus.INSTALLED
        assert shop.uninstalled_at is None


async def test_a_member_of_another_organisation_lands_there_instead(
    live_server: LiveServer, database: Database, settings: Settings, surfaces: Surfaces
) -> None:
    """The shop's owner also belongs to another organisation: once the shop is hidden,
    the dashboard opens that one (with its own data) rather than a dead end."""
    other, _ = await make_organisation(database, name="Other Business")
    async with database.transaction() as session:
        owner = await session.scalar(
            select(User).where(User.email == surfaces.connected.owner_email)
        )
        assert owner is not None
        session.add(Membership(organisation_id=other.id, user_id=owner.id, role=Role.ADMIN))
    await _uninstall(live_server, database, settings, surfaces.connected.domain)
    page = surfaces.dashboard_answer()
    assert page.status_code == 200
    assert "Other Business" in page.text
    # The shop's API key still answers that the shop is gone.
    assert surfaces.api_answer().status_code == 403
