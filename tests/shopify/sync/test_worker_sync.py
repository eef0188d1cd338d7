"""The sync as it runs in production: a worker runs the sync job; the simulator's
bulk_operations/finish webhook, through POST /webhooks/shopify, wakes the run before its
next poll; a products/update webhook reaches the catalogue and search."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from cybergine.db.engine import Database
from cybergine.jobs import Worker
from cybergine.settings import Settings
from cybergine.shopify import sync, tokens
from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.sync_models import ShopifySyncRun, SyncStatus
from tests.shopify.sync.support import connected_shop
from tests.support.server import LiveServer

pytestmark = pytest.mark.slow  # a worker, a live server and the simulator

CLIENT_ID = "worker-sync-client"
CLIENT_SECRET = "worker-sync-client-secret-of-32-bytes"


@pytest.fixture
def simulator() -> Iterator[ShopifySimulator]:
    with ShopifySimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as sim:
        yield sim


@pytest.fixture
def settings(settings: Settings, simulator: ShopifySimulator) -> Settings:
    return settings.model_copy(
        update={
            "shopify_admin_url": simulator.admin_url,
            "shopify_api_key": CLIENT_ID,
            "shopify_api_secret": SecretStr(CLIENT_SECRET),
            # Far longer than the test may take: only the webhook can wake the run.
            "shopify_bulk_poll_seconds": 600.0,
        }
    )


@pytest.fixture
async def worker(database: Database, settings: Settings) -> AsyncIterator[None]:
    task = asyncio.create_task(
        Worker(database, settings=settings, concurrency=2).run(install_signal_handlers=False)
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {seconds} s")


async def test_the_worker_syncs_and_webhooks_keep_the_catalogue_in_step(
    database: Database,
    settings: Settings,
    simulator: ShopifySimulator,
    live_server: LiveServer,
    worker: None,
) -> None:
    simulator.webhooks.url = f"{live_server.url}/webhooks/shopify"
    domain = f"worker-{uuid.uuid4().hex[:8]}.myshopify.com"
    simulator.seed(domain, generate={"products": 50}, content=True)
    grant = await tokens.exchange_session_token(settings, domain, simulator.session_token(domain))
    shop = await connected_shop(database, domain, token=grant.access_token)
    async with database.transaction() as session:
        run_id = (await sync.request_sync(session, shop)).id

    async def finished() -> bool:
        async with database.transaction() as session:
            run = await session.get(ShopifySyncRun, run_id)
            return run is not None and run.status.finished

    await _until(finished, 60, "the full sync")
    async with database.transaction() as session:
        run = await session.get(ShopifySyncRun, run_id)
        assert run is not None
        assert run.status is SyncStatus.COMPLETED, (run.error, run.errors)
        assert run.products_written == 50

    product_id = sorted(simulator.shop(domain).products)[0]
    simulator.update_product(domain, product_id, title="Glacier proof anorak")

    async def searchable() -> bool:
        async with database.transaction() as session:
            found = await session.scalar(
                text(
                    "SELECT count(*) FROM catalog_product_search s "
                    "JOIN catalog_products p ON p.id = s.product_id "
                    "WHERE s.organisation_id = :o AND p.external_id = :e "
                    "AND s.tsv @@ plainto_tsquery('english', 'glacier anorak')"
                ),
                {"o": shop.organisation_id, "e": str(product_id)},
            )
        return bool(found)

    await _until(searchable, 30, "the products/update webhook reaching search")
