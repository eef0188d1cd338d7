"""A small shoe shop's catalogue for product search tests, written through the catalogue
service (so its search rows are made as any write makes them) and embedded with the
local model as the embedding job does."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from cybergine.accounts.models import Role
from cybergine.accounts.principal import Principal
from cybergine.catalog import search_index, service
from cybergine.catalog.models import Product
from cybergine.catalog.shape import read_product
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.embeddings import EmbeddingProvider
from tests.support.factories import make_organisation

SHOPIFY_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify" / "admin_api"


def _shoe(
    title: str,
    *,
    price: str,
    stock: dict[str, int],
    colour: str = "Black",
    status: str = "active",
    body: str = "",
    product_type: str = "Shoes",
    tags: str = "",
    currency: str = "EUR",
    collections: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "title": title,
        "body_html": body,
        "vendor": "Trailfox",
        "product_type": product_type,
        "tags": tags,
        "status": status,
        "currency": currency,
        "options": [
            {"name": "Size", "values": list(stock)},
            {"name": "Color", "values": [colour]},
        ],
        "variants": [
            {
                "option1": size,
                "option2": colour,
                "price": price,
                "inventory_quantity": quantity,
                "inventory_policy": "deny",
                "sku": f"{title[:8]}-{size}",
            }
            for size, quantity in stock.items()
        ],
        "images": [{"src": f"https://cdn.example/{uuid.uuid4().hex[:8]}.jpg"}],
        "collections": list(collections),
    }


# Each product says in its title what the tests expect of it.
SHOES: dict[str, dict[str, Any]] = {
    "fit": _shoe(
        "Waterproof Trail Running Shoe",
        price="89.90",
        stock={"41": 2, "42": 3, "43": 0},
        body="<p>Grippy <b>trail</b> shoe with a waterproof membrane &amp; rock plate.</p>",
        tags="trail, waterproof",
        collections=("Trail",),
    ),
    "too_dear": _shoe(
        "Summit Pro Trail Shoe",
        price="149.00",
        stock={"42": 5},
        body="<p>Waterproof Gore-Tex trail running shoe for long mountain days.</p>",
        tags="trail, waterproof",
        collections=("Trail",),
    ),
    "size_42_sold_out": _shoe(
        "Ridge Trail Shoe",
        price="79.00",
        stock={"42": 0, "44": 4},
        colour="Blue",
        body="<p>Light waterproof trail shoe.</p>",
        tags="trail",
    ),
    "draft": _shoe(
        "Prototype Trail Shoe",
        price="59.00",
        stock={"42": 9},
        status="draft",
        body="<p>Waterproof trail shoe, not released.</p>",
    ),
    "archived": _shoe(
        "Old Trail Shoe", price="49.00", stock={"42": 9}, status="archived", body="<p>Trail.</p>"
    ),
    "road": _shoe(
        "City Road Runner",
        price="69.00",
        stock={"42": 7},
        colour="White",
        body="<p>Cushioned road running shoe for asphalt.</p>",
    ),
    "socks": _shoe(
        "Merino Hiking Socks",
        price="19.00",
        stock={"M": 10, "L": 0},
        product_type="Socks",
        body="<p>Warm wool socks.</p>",
    ),
    "dollars": _shoe(
        "Desert Trail Sandal",
        price="29.00",
        stock={"42": 3},
        currency="USD",
        body="<p>Open trail sandal.</p>",
    ),
}


def principal_of(organisation_id: uuid.UUID, user_id: uuid.UUID, email: str) -> Principal:
    return Principal(organisation_id, Role.OWNER, user_id=user_id, email=email)


async def add_products(
    database: Database, principal: Principal, products: dict[str, dict[str, Any]]
) -> dict[str, uuid.UUID]:
    ids: dict[str, uuid.UUID] = {}
    async with database.transaction() as session:
        scope = TenantScope(session, principal.organisation_id)
        for key, data in products.items():
            product: Product = await service.create_product(scope, principal, read_product(data))
            ids[key] = product.id
    return ids


async def shoe_shop(
    database: Database, provider: EmbeddingProvider | None, *, name: str = "Trailfox"
) -> tuple[Principal, dict[str, uuid.UUID]]:
    """An organisation with ``SHOES``, searchable by words and (with ``provider``) meaning."""
    organisation, owner = await make_organisation(database, name=name)
    principal = principal_of(organisation.id, owner.id, owner.email)
    ids = await add_products(database, principal, SHOES)
    await search_index.embed_pending(database, organisation.id, provider)
    return principal, ids


def shopify_products() -> list[dict[str, Any]]:
    """Shopify's own REST Admin product examples, as they come."""
    data = json.loads((SHOPIFY_FIXTURES / "rest_products_01.json").read_text())
    products: list[dict[str, Any]] = data["products"]
    return products
