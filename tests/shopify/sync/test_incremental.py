"""Product and collection webhooks keep the catalogue in step, in whatever order they
arrive: an older payload never overwrites a newer one, nor brings a deleted product
back."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from cybergine.catalog.models import CatalogCollection
from cybergine.db.engine import Database
from cybergine.shopify import incremental
from cybergine.shopify.models import ShopifyShop
from cybergine.shopify.webhook_handlers import handler_for
from tests.shopify.sync.support import catalogue, connected_shop

FIXTURES = Path(__file__).parents[2] / "fixtures/shopify/admin_api"


def _ipod() -> dict[str, Any]:
    products = json.loads((FIXTURES / "rest_products_01.json").read_text())["products"]
    return copy.deepcopy(products[0])


async def _deliver(
    database: Database, shop: ShopifyShop, topic: str, payload: dict[str, Any], webhook_id: str
) -> None:
    handler = handler_for(topic)
    assert handler is not None, topic
    async with database.transaction() as session:
        await handler(session, shop, topic, payload, webhook_id)


async def test_product_webhooks_apply_in_order_of_updated_at_not_of_arrival(
    database: Database,
) -> None:
    shop = await connected_shop(database)
    first = _ipod()
    await _deliver(database, shop, "products/create", first, "w1")
    held = (await catalogue(database, shop))[str(first["id"])]
    assert held.title == "IPod Nano - 8GB"
    assert len(held.variants) == len(first["variants"])
    assert [i.src for i in held.images] == [i["src"] for i in first["images"]]

    newer = {**_ipod(), "title": "iPod Nano (2026)", "updated_at": "2026-03-01T10:00:00Z"}
    older = {**_ipod(), "title": "iPod Nano (stale)", "updated_at": "2026-02-01T10:00:00Z"}
    await _deliver(database, shop, "products/update", newer, "w2")
    await _deliver(database, shop, "products/update", older, "w3")
    held = (await catalogue(database, shop))[str(first["id"])]
    assert held.title == "iPod Nano (2026)"

    await _deliver(database, shop, "products/delete", {"id": first["id"]}, "w4")
    assert await catalogue(database, shop) == {}
    # An update written before the deletion, delivered after it.
    late = {**_ipod(), "title": "iPod Nano (late)", "updated_at": "2026-03-02T10:00:00Z"}
    await _deliver(database, shop, "products/update", late, "w5")
    assert await catalogue(database, shop) == {}


async def test_a_product_update_is_searchable_by_its_words_when_it_commits(
    database: Database,
) -> None:
    shop = await connected_shop(database)
    payload = {**_ipod(), "title": "Waterproof trail shoe", "updated_at": "2026-03-01T10:00:00Z"}
    await _deliver(database, shop, "products/update", payload, "w1")
    async with database.transaction() as session:
        found = await session.scalar(
            text(
                "SELECT count(*) FROM catalog_product_search "
                "WHERE organisation_id = :o AND tsv @@ plainto_tsquery('english', 'waterproof')"
            ),
            {"o": shop.organisation_id},
        )
    assert found == 1


async def test_a_refused_payload_changes_nothing_and_is_not_retried(database: Database) -> None:
    shop = await connected_shop(database)
    broken = {**_ipod(), "variants": [{"price": "not a price"}]}
    await _deliver(database, shop, "products/create", broken, "w1")
    assert await catalogue(database, shop) == {}


async def test_collection_webhooks_make_rename_and_delete_the_collection(
    database: Database,
) -> None:
    shop = await connected_shop(database)
    payload = {
        "id": 841564295,
        "handle": "ipods",
        "title": "IPods",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    await _deliver(database, shop, incremental.COLLECTIONS_CREATE, payload, "c1")
    renamed = {
        **payload,
        "handle": "music-players",
        "title": "Music players",
        "updated_at": "2026-01-02T00:00:00Z",
    }
    await _deliver(database, shop, incremental.COLLECTIONS_UPDATE, renamed, "c2")
    await _deliver(database, shop, incremental.COLLECTIONS_UPDATE, payload, "c3")  # older
    async with database.transaction() as session:
        rows = (
            await session.execute(
                select(CatalogCollection.handle, CatalogCollection.title).where(
                    CatalogCollection.organisation_id == shop.organisation_id
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [("music-players", "Music players")]
    await _deliver(database, shop, incremental.COLLECTIONS_DELETE, {"id": 841564295}, "c4")
    async with database.transaction() as session:
        left = await session.scalar(
            select(CatalogCollection.id).where(
                CatalogCollection.organisation_id == shop.organisation_id
            )
        )
    assert left is None
