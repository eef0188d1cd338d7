"""A connected shop for the sync's tests, and reading the catalogue back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from cybergine.catalog import service
from cybergine.catalog.models import Product
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.shopify.models import ShopifyShop, ShopStatus
from tests.support.factories import make_organisation


async def connected_shop(
    database: Database,
    domain: str | None = None,
    *,
    token: str = "shpat_test",  # noqa: S107 (a test token)
    organisation_id: uuid.UUID | None = None,
) -> ShopifyShop:
    if organisation_id is None:
        organisation, _ = await make_organisation(database, name="Trail Shop")
        organisation_id = organisation.id
    async with database.transaction() as session:
        shop = ShopifyShop(
            organisation_id=organisation_id,
            shop_domain=domain or f"shop-{uuid.uuid4().hex[:10]}.myshopify.com",
            status=ShopStatus.INSTALLED,
            access_token=token,
            installed_at=datetime.now(UTC),
        )
        session.add(shop)
        await session.flush()
        session.expunge(shop)
    return shop


async def catalogue(database: Database, shop: ShopifyShop) -> dict[str, Product]:
    """The organisation's products by external id, with their rows."""
    async with database.transaction() as session:
        scope = TenantScope(session, shop.organisation_id)
        ids = list(await session.scalars(scope.select(Product).with_only_columns(Product.id)))
        products = [await service.get_product(scope, i) for i in ids]
        for product in products:
            session.expunge(product)
    return {p.external_id or p.handle: p for p in products}


async def count(database: Database, statement: object) -> int:
    async with database.transaction() as session:
        return len((await session.execute(select(statement))).all())  # type: ignore[call-overload]
