"""The periodic refresh of content: a shop whose content was not synced within
``shopify_content_refresh_hours`` gets a content run, which a worker takes to the end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from cybergine.db.engine import Database
from cybergine.jobs import APP
from cybergine.knowledge.models import Item
from cybergine.queue import defer
from cybergine.settings import Settings
from cybergine.shopify import tokens
from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.sync_models import ShopifySyncRun, SyncKind, SyncStatus
from tests.shopify.sync.support import connected_shop
from tests.support.jobs import run_jobs

CLIENT_ID = "refresh-client"
CLIENT_SECRET = "refresh-client-secret-of-32-bytes-x"


@pytest.fixture
def simulator() -> Iterator[ShopifySimulator]:
    with ShopifySimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as sim:
        yield sim


async def test_a_shop_due_for_a_content_refresh_gets_its_content_synced(
    database: Database, settings: Settings, simulator: ShopifySimulator
) -> None:
    configured = settings.model_copy(
        update={
            "shopify_admin_url": simulator.admin_url,
            "shopify_api_key": CLIENT_ID,
            "shopify_api_secret": SecretStr(CLIENT_SECRET),
            "shopify_content_refresh_hours": 6.0,
        }
    )
    domain = f"refresh-{uuid.uuid4().hex[:8]}.myshopify.com"
    simulator.seed(domain, content=True)
    grant = await tokens.exchange_session_token(configured, domain, simulator.session_token(domain))
    shop = await connected_shop(database, domain, token=grant.access_token)
    async with database.transaction() as session:
        await defer(session, APP.tasks["shopify:refresh_content"], timestamp=0)
    await run_jobs(database, configured)
    async with database.transaction() as session:
        runs = list(
            await session.scalars(select(ShopifySyncRun).where(ShopifySyncRun.shop_id == shop.id))
        )
        documents = list(
            await session.scalars(
                select(Item.external_id).where(Item.organisation_id == shop.organisation_id)
            )
        )
    assert [(r.kind, r.status) for r in runs] == [(SyncKind.CONTENT, SyncStatus.COMPLETED)]
    assert documents
    assert all(d and d.startswith("shopify:") for d in documents)

    # Synced just now: the next refresh leaves the shop alone.
    async with database.transaction() as session:
        await defer(session, APP.tasks["shopify:refresh_content"], timestamp=1)
    await run_jobs(database, configured)
    async with database.transaction() as session:
        count = len(
            list(
                await session.scalars(
                    select(ShopifySyncRun.id).where(ShopifySyncRun.shop_id == shop.id)
                )
            )
        )
    assert count == 1
