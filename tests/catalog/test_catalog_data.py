"""The catalogue's rows as the rest of the product treats an organisation's data: in
the owner's whole-organisation export (prices as exact decimals), removed with the
organisation by the catalogue's purger, and gone from every table when a product is
deleted."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from sqlalchemy import delete, func, select

from cybergine.accounts.models import Organisation, Role
from cybergine.accounts.principal import Principal
from cybergine.catalog import service
from cybergine.catalog.models import (
    CatalogCollection,
    CollectionMembership,
    Product,
    ProductImage,
    ProductOption,
    Variant,
)
from cybergine.catalog.shape import read_product
from cybergine.db.engine import Database
from cybergine.db.retention import Retention
from cybergine.db.tenancy import TenantScope
from cybergine.privacy.organisation_export.archive import write_archive
from cybergine.privacy.purgers import PURGERS
from tests.support.factories import make_organisation

TABLES = (Product, ProductOption, Variant, ProductImage, CatalogCollection, CollectionMembership)
SHIRT = {
    "title": "Linen shirt",
    "options": [{"name": "Size", "values": ["S"]}],
    "variants": [{"option1": "S", "price": "49.90", "compare_at_price": "59.00"}],
    "images": [{"src": "https://cdn.example/s.png"}],
    "collections": ["Summer"],
}


async def _shop_with_a_shirt(database: Database) -> tuple[Principal, Product]:
    organisation, owner = await make_organisation(database, name="Corner Shop")
    principal = Principal(organisation.id, Role.OWNER, user_id=owner.id, email=owner.email)
    async with database.transaction() as session:
        product = await service.create_product(
            TenantScope(session, organisation.id), principal, read_product(SHIRT)
        )
    return principal, product


async def _rows(database: Database) -> dict[str, int]:
    async with database.transaction() as session:
        return {
            model.__tablename__: int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in TABLES
        }


def test_the_catalogue_purger_covers_every_catalogue_table() -> None:
    purger = PURGERS[Retention.CATALOGUE]
    for model in TABLES:
        assert model.__retention__ is Retention.CATALOGUE
        assert purger.covers(model.__table__), model.__tablename__  # type: ignore[arg-type]


async def test_the_owners_export_holds_the_catalogue(database: Database, tmp_path: Path) -> None:
    owner, _ = await _shop_with_a_shirt(database)
    archive = tmp_path / "export.zip"
    async with database.transaction() as session:
        counts = await write_archive(session, owner.organisation_id, archive)
    assert all(counts[model.__tablename__] == 1 for model in TABLES), counts
    with zipfile.ZipFile(archive) as zip_file:
        (name,) = [n for n in zip_file.namelist() if n.startswith("catalog_variants")]
        variant = json.loads(zip_file.read(name).splitlines()[0])
    assert (variant["price"], variant["compare_at_price"]) == ("49.90", "59.00")


async def test_deleting_a_product_or_its_organisation_leaves_no_row(database: Database) -> None:
    owner, product = await _shop_with_a_shirt(database)
    assert set((await _rows(database)).values()) == {1}
    async with database.transaction() as session:
        scope = TenantScope(session, owner.organisation_id)
        await service.delete_product(scope, owner, product.id)
    rows = await _rows(database)
    assert rows.pop("catalog_collections") == 1  # a collection outlives its products
    assert set(rows.values()) == {0}

    await _shop_with_a_shirt(database)
    async with database.transaction() as session:
        await session.execute(delete(Organisation))
    assert set((await _rows(database)).values()) == {0}
