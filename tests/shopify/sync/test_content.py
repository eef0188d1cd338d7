"""A shop's pages, articles and policies as documents of the ``shopify`` knowledge
collection: created, rewritten and indexed again when edited, removed when unpublished or
deleted, and searchable."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.models import Collection, Item, ItemStatus
from cybergine.shopify import content
from cybergine.shopify.content import Document
from cybergine.shopify.models import ShopifyShop
from tests.shopify.sync.support import connected_shop

FIXTURES = Path(__file__).parents[2] / "fixtures/shopify/admin_api"


def _documents() -> list[Document]:
    """Shopify's own REST examples of a page and a policy, as the sync makes them."""
    page = json.loads((FIXTURES / "rest_pages_01.json").read_text())["pages"][1]
    policy = json.loads((FIXTURES / "rest_policies_02.json").read_text())["policies"][0]
    return [
        Document(
            f"shopify:page:{page['id']}",
            page["title"],
            content.text_of(page["body_html"]),
            {"source": "shopify", "type": "page"},
        ),
        Document(
            "shopify:policy:refund_policy",
            policy["title"],
            content.text_of(policy["body"]),
            {"source": "shopify", "type": "policy"},
        ),
    ]


async def _held(database: Database, shop: ShopifyShop) -> dict[str, Item]:
    async with database.transaction() as session:
        items = list(
            await session.scalars(
                TenantScope(session, shop.organisation_id)
                .select(Item)
                .join(Collection, Collection.id == Item.collection_id)
                .where(Collection.name == content.COLLECTION)
            )
        )
        for item in items:
            session.expunge(item)
    return {item.external_id or "": item for item in items}


async def _apply(database: Database, shop: ShopifyShop, documents: list[Document]) -> None:
    async with database.transaction() as session:
        await content.apply_documents(TenantScope(session, shop.organisation_id), documents)


async def test_content_documents_follow_edits_unpublishing_and_deletion(
    database: Database,
) -> None:
    shop = await connected_shop(database)
    documents = _documents()
    assert all(d.body.strip() for d in documents)
    assert "<" not in documents[0].body  # the HTML is read, not stored
    await _apply(database, shop, documents)
    held = await _held(database, shop)
    assert set(held) == {d.external_id for d in documents}
    page = held[documents[0].external_id]
    assert page.status is ItemStatus.PENDING  # its indexing job is queued
    assert page.version == 1

    # The same content again: nothing rewritten, nothing indexed again.
    await _apply(database, shop, documents)
    assert (await _held(database, shop))[page.external_id or ""].version == 1

    edited = Document(page.external_id or "", "Warranty", "Two years on every product.", {})
    await _apply(database, shop, [edited, documents[1]])
    again = (await _held(database, shop))[page.external_id or ""]
    assert (again.id, again.title, again.body) == (page.id, "Warranty", edited.body)
    assert again.version == 2  # indexed again

    # Unpublished (or deleted): no longer among the shop's documents.
    await _apply(database, shop, [documents[1]])
    assert set(await _held(database, shop)) == {documents[1].external_id}
    async with database.transaction() as session:
        assert await session.get(Item, page.id) is None


async def test_documents_of_the_organisation_outside_the_shop_are_left_alone(
    database: Database,
) -> None:
    shop = await connected_shop(database)
    async with database.transaction() as session:
        from cybergine.knowledge import service as knowledge

        await knowledge.create_document(
            TenantScope(session, shop.organisation_id),
            title="Our own FAQ",
            body="Written in Cybergine.",
            external_id="faq-1",
        )
    await _apply(database, shop, [])
    async with database.transaction() as session:
        left = await session.scalar(
            select(Item.title).where(Item.organisation_id == shop.organisation_id)
        )
    assert left == "Our own FAQ"
