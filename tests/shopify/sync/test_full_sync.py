"""A full sync from the Shopify simulator: the bulk query, its JSONL file streamed into
the catalogue, the content into the knowledge base; a run stopped between batches
resumes where its last batch ended; products gone from the shop are deleted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text

from cybergine.catalog.models import Product, Variant
from cybergine.db.engine import Database
from cybergine.knowledge.models import Item
from cybergine.settings import Settings
from cybergine.shopify import sync, sync_status, tokens
from cybergine.shopify.admin_api import AdminApiError
from cybergine.shopify.models import ShopifyShop
from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.sync_models import ShopifySyncRun, SyncKind, SyncStatus
from tests.shopify.sync.support import connected_shop

CLIENT_ID = "sync-test-client"
CLIENT_SECRET = "sync-test-client-secret-of-32-bytes"


@pytest.fixture
def simulator() -> Iterator[ShopifySimulator]:
    with ShopifySimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as sim:
        yield sim


@pytest.fixture
def sync_settings(settings: Settings, simulator: ShopifySimulator) -> Settings:
    return settings.model_copy(
        update={
            "shopify_admin_url": simulator.admin_url,
            "shopify_api_key": CLIENT_ID,
            "shopify_api_secret": SecretStr(CLIENT_SECRET),
            "shopify_bulk_poll_seconds": 0.1,
        }
    )


async def _installed(
    database: Database, settings: Settings, simulator: ShopifySimulator, **seed: object
) -> tuple[ShopifyShop, str]:
    domain = f"sync-{uuid.uuid4().hex[:8]}.myshopify.com"
    simulator.seed(domain, **seed)
    grant = await tokens.exchange_session_token(settings, domain, simulator.session_token(domain))
    return await connected_shop(database, domain, token=grant.access_token), grant.access_token


async def _run_to_the_end(
    database: Database,
    settings: Settings,
    shop: ShopifyShop,
    access_token: str,
    run_id: uuid.UUID,
    after_batch: sync.AfterBatch | None = None,
) -> ShopifySyncRun:
    """Advances the run as its job would, until it finishes (a deadline, no fixed wait:
    each step returns when Shopify's operation moved on or the poll interval passed)."""

    async def token(_: ShopifyShop) -> str:
        return access_token

    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        await sync.advance(database, settings, run_id, token=token, after_batch=after_batch)
        async with database.transaction() as session:
            run = await session.get(ShopifySyncRun, run_id)
            assert run is not None
            session.expunge(run)
        if run.status.finished:
            return run
        await asyncio.sleep(settings.shopify_bulk_poll_seconds)
    raise AssertionError("the sync did not finish in 60 s")


async def _request(database: Database, shop: ShopifyShop) -> uuid.UUID:
    async with database.transaction() as session:
        run = await sync.request_sync(session, shop)
        return run.id


async def test_a_full_sync_brings_the_catalogue_and_the_content(
    database: Database, sync_settings: Settings, simulator: ShopifySimulator
) -> None:
    shop, token = await _installed(
        database, sync_settings, simulator, generate={"products": 120}, content=True
    )
    run = await _run_to_the_end(
        database, sync_settings, shop, token, await _request(database, shop)
    )
    assert run.status is SyncStatus.COMPLETED, (run.error, run.errors)
    assert run.products_written == 120
    assert run.products_failed == 0
    assert run.documents_written > 0
    async with database.transaction() as session:
        products = await session.scalar(
            select(func.count()).where(Product.organisation_id == shop.organisation_id)
        )
        variants = await session.scalar(
            select(func.count()).where(Variant.organisation_id == shop.organisation_id)
        )
        searchable = await session.scalar(
            text("SELECT count(*) FROM catalog_product_search WHERE organisation_id = :o"),
            {"o": shop.organisation_id},
        )
    sim_shop = simulator.shop(shop.shop_domain)
    assert products == len(sim_shop.products) == 120
    assert variants == sum(len(p.variants) for p in sim_shop.products.values())
    assert searchable == 120
    status = await _status(database, shop)
    assert status["latest"]["status"] == "completed"
    assert status["products"] == 120


async def _status(database: Database, shop: ShopifyShop) -> dict[str, object]:
    async with database.transaction() as session:
        return await sync_status.sync_status(session, shop)


class Crash(Exception):
    """Stands for a worker dying between two batches."""


async def test_a_run_stopped_between_batches_resumes_after_the_lines_it_applied(
    database: Database, sync_settings: Settings, simulator: ShopifySimulator
) -> None:
    shop, token = await _installed(database, sync_settings, simulator, generate={"products": 600})
    run_id = await _request(database, shop)
    reached: list[int] = []

    async def crash_after_first_batch(_: uuid.UUID, line: int) -> None:
        reached.append(line)
        raise Crash

    with pytest.raises(Crash):
        await _run_to_the_end(database, sync_settings, shop, token, run_id, crash_after_first_batch)
    async with database.transaction() as session:
        stopped = await session.get(ShopifySyncRun, run_id)
        assert stopped is not None
        assert stopped.status is SyncStatus.APPLYING
        assert stopped.lines_applied == reached[0] > 0
        written_before = stopped.products_written
    assert 0 < written_before < 600

    run = await _run_to_the_end(database, sync_settings, shop, token, run_id)
    assert run.status is SyncStatus.COMPLETED, (run.error, run.errors)
    # The lines before the one reached were skipped: no product was written twice.
    assert run.products_written == 600
    await _assert_catalogue_matches(database, shop, simulator)


async def test_a_download_that_fails_is_retried_by_the_job_and_resumes(
    database: Database, sync_settings: Settings, simulator: ShopifySimulator
) -> None:
    shop, token = await _installed(database, sync_settings, simulator, generate={"products": 30})
    run_id = await _request(database, shop)
    simulator.fail_next(status=503, endpoint="bulk_file")
    with pytest.raises(AdminApiError) as failure:
        await _run_to_the_end(database, sync_settings, shop, token, run_id)
    assert failure.value.retryable
    run = await _run_to_the_end(database, sync_settings, shop, token, run_id)
    assert run.status is SyncStatus.COMPLETED
    await _assert_catalogue_matches(database, shop, simulator)


async def test_children_handed_out_late_reach_their_product(
    database: Database, sync_settings: Settings, simulator: ShopifySimulator
) -> None:
    """With no window every variant, image and collection comes after its product left
    it: the stored product is completed from them, as a file with late lines is."""
    shop, token = await _installed(database, sync_settings, simulator, generate={"products": 40})

    async def token_of(_: ShopifyShop) -> str:
        return token

    run_id = await _request(database, shop)
    for _ in range(400):
        await sync.advance(database, sync_settings, run_id, token=token_of, window=0)
        async with database.transaction() as session:
            run = await session.get(ShopifySyncRun, run_id)
            assert run is not None
            if run.status.finished:
                break
        await asyncio.sleep(sync_settings.shopify_bulk_poll_seconds)
    assert run.status is SyncStatus.COMPLETED, (run.error, run.errors)
    await _assert_catalogue_matches(database, shop, simulator)


async def test_products_gone_from_the_shop_are_deleted_by_the_next_full_sync(
    database: Database, sync_settings: Settings, simulator: ShopifySimulator
) -> None:
    shop, token = await _installed(database, sync_settings, simulator, generate={"products": 20})
    await _run_to_the_end(database, sync_settings, shop, token, await _request(database, shop))
    sim_shop = simulator.shop(shop.shop_domain)
    for product_id in sorted(sim_shop.products)[:3]:
        sim_shop.remove_product(product_id)
    run = await _run_to_the_end(
        database, sync_settings, shop, token, await _request(database, shop)
    )
    assert run.products_deleted == 3
    await _assert_catalogue_matches(database, shop, simulator)


async def _assert_catalogue_matches(
    database: Database, shop: ShopifyShop, simulator: ShopifySimulator
) -> None:
    """The catalogue holds exactly the shop's products, each with its variants once."""
    sim_shop = simulator.shop(shop.shop_domain)
    with sim_shop.lock:
        expected = {str(p.id): len(p.variants) for p in sim_shop.products.values()}
    async with database.transaction() as session:
        rows = (
            await session.execute(
                select(Product.external_id, func.count(Variant.id))
                .outerjoin(Variant, Variant.product_id == Product.id)
                .where(Product.organisation_id == shop.organisation_id)
                .group_by(Product.external_id)
            )
        ).all()
    assert dict(rows) == expected


async def test_a_content_run_follows_the_shops_edits_unpublishing_and_deletions(
    database: Database, sync_settings: Settings, simulator: ShopifySimulator
) -> None:
    shop, token = await _installed(database, sync_settings, simulator, content=True)
    await _run_to_the_end(database, sync_settings, shop, token, await _request(database, shop))
    before = await _documents(database, shop)
    sim_shop = simulator.shop(shop.shop_domain)
    with sim_shop.lock:
        pages = sorted(sim_shop.pages.values(), key=lambda p: p.id)
        edited, unpublished = pages[0], pages[1]
        edited.body = "<p>Parcels leave our warehouse within <b>two days</b>.</p>"
        unpublished.published_at = None
        deleted = sorted(sim_shop.articles)[0]
        del sim_shop.articles[deleted]
    assert f"shopify:page:{edited.id}" in before
    assert f"shopify:page:{unpublished.id}" in before
    assert f"shopify:article:{deleted}" in before
    async with database.transaction() as session:
        run_id = (await sync.request_sync(session, shop, SyncKind.CONTENT)).id
    run = await _run_to_the_end(database, sync_settings, shop, token, run_id)
    assert run.status is SyncStatus.COMPLETED, run.error
    assert (run.documents_written, run.documents_removed) == (1, 2)
    after = await _documents(database, shop)
    assert set(before) - set(after) == {
        f"shopify:page:{unpublished.id}",
        f"shopify:article:{deleted}",
    }
    assert "two days" in after[f"shopify:page:{edited.id}"]


async def _documents(database: Database, shop: ShopifyShop) -> dict[str, str]:
    async with database.transaction() as session:
        rows = await session.execute(
            select(Item.external_id, Item.body).where(
                Item.organisation_id == shop.organisation_id, Item.external_id.is_not(None)
            )
        )
        return {str(external_id): str(body) for external_id, body in rows.all()}


async def test_a_revoked_token_fails_the_run_and_forgets_the_token(
    database: Database, sync_settings: Settings, simulator: ShopifySimulator
) -> None:
    shop, _ = await _installed(database, sync_settings, simulator, generate={"products": 3})
    run_id = await _request(database, shop)
    run = await _run_to_the_end(database, sync_settings, shop, "shpat_revoked", run_id)
    assert run.status is SyncStatus.FAILED
    assert run.error is not None
    assert "HTTP 401" in run.error
    async with database.transaction() as session:
        held = await session.get(ShopifyShop, shop.id)
        assert held is not None
        assert held.access_token is None
        status = await sync_status.sync_status(session, held)
    assert status["connected"] is False
