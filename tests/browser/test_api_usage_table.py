"""The API keys page's table of the keys' use, with rows in it: no serious axe finding,
nothing to scroll sideways at desktop or phone width."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser
from sqlalchemy import insert, select

from cybergine.accounts.models import ApiKey
from cybergine.analytics.api_usage_models import ApiCall
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from tests.browser.conftest import run_async, sign_in
from tests.support.accessibility import assert_fits_and_accessible
from tests.support.factories import make_api_key, make_organisation
from tests.support.server import LiveServer

ROUTES = ("/api/v1/conversations", "/api/v1/knowledge/items/{item_id}/versions/{version_id}")


async def _seed(database_url: str) -> str:
    database = Database(database_url, pool_size=2)
    try:
        shop, owner = await make_organisation(database, name="Table shop")
        await make_api_key(database, shop.id)
        async with database.transaction() as session:
            key_id = await session.scalar(
                select(ApiKey.id).where(ApiKey.organisation_id == shop.id)
            )
            for n, route in enumerate(ROUTES):
                await session.execute(
                    insert(ApiCall).values(
                        id=uuid7(),
                        organisation_id=shop.id,
                        api_key_id=key_id if n == 0 else uuid.uuid4(),  # then a deleted key
                        method="GET",
                        route=route,
                        status=200 + 300 * n,
                        latency_ms=12.5,
                        created_at=datetime.now(UTC) - timedelta(hours=1),
                    )
                )
        return owner.email
    finally:
        await database.dispose()


def test_the_table_of_the_keys_use_is_accessible(
    chromium: Browser, live_server: LiveServer, database_url: str
) -> None:
    email = run_async(_seed(database_url))
    for viewport in ({"width": 1280, "height": 800}, {"width": 390, "height": 844}):
        context = chromium.new_context(viewport=viewport)  # type: ignore[arg-type]
        page = context.new_page()
        sign_in(page, live_server.url, email)
        page.goto(f"{live_server.url}/settings/api-keys")
        assert page.get_by_role("heading", name="Use in the last 28 days").is_visible()
        assert page.get_by_role("cell", name="GET /api/v1/conversations", exact=True).is_visible()
        assert page.get_by_text("deleted key").is_visible()
        assert_fits_and_accessible(page, f"the API keys page at {viewport['width']} px")
        context.close()
