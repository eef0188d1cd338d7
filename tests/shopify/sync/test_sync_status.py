"""Where a shop's sync stands, over real HTTP: /api/v1/shopify/sync for the API and the
embedded admin, and the catalogue page's "Sync from Shopify" section with "Sync now"."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from cybergine.accounts.models import Role
from cybergine.db.engine import Database
from cybergine.shopify.sync_models import ShopifySyncRun, SyncKind, SyncStatus
from tests.shopify.sync.support import connected_shop
from tests.support.factories import make_api_key, make_organisation
from tests.support.inbox import member, signed_in
from tests.support.server import LiveServer


async def _shop_with_a_finished_run(database: Database):  # type: ignore[no-untyped-def]
    organisation, owner = await make_organisation(database, name="Trail Shop")
    shop = await connected_shop(database, organisation_id=organisation.id)
    async with database.transaction() as session:
        session.add(
            ShopifySyncRun(
                organisation_id=organisation.id,
                shop_id=shop.id,
                kind=SyncKind.FULL,
                status=SyncStatus.COMPLETED,
                products_written=41,
                products_failed=1,
                products_deleted=2,
                documents_written=5,
                errors=[{"line": 17, "product": "42", "error": "`variants[0].price` is required."}],
                started_at=datetime.now(UTC),
                finished_at=datetime.now(UTC),
            )
        )
    return organisation, owner, shop


async def test_the_api_shows_the_sync_and_starts_one(
    live_server: LiveServer, database: Database
) -> None:
    organisation, _, shop = await _shop_with_a_finished_run(database)
    key = await make_api_key(database, organisation.id)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=10) as http:
        status = http.get("/api/v1/shopify/sync").json()
        assert status["shop"] == shop.shop_domain
        assert status["connected"] is True
        assert status["running"] is False
        assert status["latest"]["status"] == "completed"
        assert status["latest"]["products_written"] == 41
        assert status["latest"]["errors"][0]["line"] == 17
        started = http.post("/api/v1/shopify/sync")
        assert started.status_code == 202, started.text
        assert started.json()["status"] == "queued"
        # A second request while it is under way answers the same run.
        assert http.post("/api/v1/shopify/sync").json()["id"] == started.json()["id"]
        assert http.get("/api/v1/shopify/sync").json()["running"] is True
    viewer_key = await make_api_key(database, organisation.id, Role.VIEWER)
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        refused = http.post(
            "/api/v1/shopify/sync", headers={"Authorization": f"Bearer {viewer_key}"}
        )
    assert refused.status_code == 403


async def test_an_organisation_without_a_shop_has_no_sync(
    live_server: LiveServer, database: Database
) -> None:
    organisation, owner = await make_organisation(database, name="No Shop")
    key = await make_api_key(database, organisation.id)
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        answer = http.get("/api/v1/shopify/sync", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    with signed_in(live_server.url, owner) as browser:
        assert "Sync from Shopify" not in browser.get("/catalog").text


async def test_the_catalogue_page_shows_the_sync_and_syncs_now(
    live_server: LiveServer, database: Database
) -> None:
    organisation, owner, shop = await _shop_with_a_finished_run(database)
    viewer = await member(database, organisation.id, Role.VIEWER)
    with signed_in(live_server.url, owner) as browser:
        page = html.unescape(browser.get("/catalog").text)
        assert "Sync from Shopify" in page
        assert shop.shop_domain in page
        assert "41 written" in page
        assert "`variants[0].price` is required." in page
        response = browser.post("/catalog/shopify-sync", {}, csrf_from="/catalog")
        assert response.status_code == 303
        page = browser.get("/catalog").text
        assert "A sync is running." in page
    async with database.transaction() as session:
        kinds = list(
            await session.scalars(
                select(ShopifySyncRun.status).where(ShopifySyncRun.shop_id == shop.id)
            )
        )
    assert sorted(kinds) == sorted([SyncStatus.COMPLETED, SyncStatus.QUEUED])
    with signed_in(live_server.url, viewer) as browser:
        page = browser.get("/catalog").text
        assert "Sync from Shopify" in page
        assert "Sync now" not in page
