"""A shop's pages, blog articles and legal policies as documents of its knowledge base,
in the collection ``shopify``, kept in step with the shop.

Shopify sends no webhook for pages, articles or policies in the app's subscriptions, so
each full sync reads them all again, and so does a periodic refresh
(``shopify_content_refresh_hours``). A document is created for each published one, its
text replaced (and so indexed again) when it changed, and removed when it was
unpublished or deleted in the shop. The HTML is read with the knowledge base's own HTML
reader (bounded by its limits) into the Markdown its indexer reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.errors import CybergineError
from cybergine.knowledge import service as knowledge
from cybergine.knowledge.extract import Limits
from cybergine.knowledge.extract.html import extract_html
from cybergine.knowledge.models import Item, ItemKind
from cybergine.shopify import queries
from cybergine.shopify.admin_api import AdminClient
from cybergine.shopify.bulk_jsonl import numeric_id
from cybergine.shopify.models import ShopifyShop

COLLECTION = "shopify"
# Every document this module owns has an external id with this prefix.
EXTERNAL_PREFIX = "shopify:"
MAX_TITLE = 500


@dataclass(frozen=True)
class Document:
    external_id: str
    title: str
    body: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ContentCounts:
    written: int
    removed: int


def text_of(html: str) -> str:
    """The Markdown of an HTML body (headings kept); the tags stripped."""
    if not html.strip():
        return ""
    try:
        document = extract_html(html, Limits())
    except CybergineError:
        return ""
    return knowledge.as_markdown(document.sections)


async def _paged(client: AdminClient, query: str, field: str) -> AsyncIterator[dict[str, Any]]:
    after: str | None = None
    while True:
        data = (await client.query(query, {"after": after}))[field]
        for node in data.get("nodes") or []:
            yield node
        info = data.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            return
        after = info.get("endCursor")


async def fetch_documents(client: AdminClient) -> list[Document]:
    """The shop's published pages and articles and its policies, as documents."""
    documents: list[Document] = []
    async for page in _paged(client, queries.PAGES, "pages"):
        if page.get("isPublished"):
            documents.append(
                Document(
                    f"{EXTERNAL_PREFIX}page:{numeric_id(page['id'])}",
                    str(page.get("title") or page.get("handle") or "Page")[:MAX_TITLE],
                    text_of(str(page.get("body") or "")),
                    {"source": "shopify", "type": "page", "handle": page.get("handle")},
                )
            )
    async for article in _paged(client, queries.ARTICLES, "articles"):
        if article.get("isPublished"):
            blog = article.get("blog") or {}
            documents.append(
                Document(
                    f"{EXTERNAL_PREFIX}article:{numeric_id(article['id'])}",
                    str(article.get("title") or article.get("handle") or "Article")[:MAX_TITLE],
                    text_of(str(article.get("body") or "")),
                    {
                        "source": "shopify",
                        "type": "article",
                        "handle": article.get("handle"),
                        "blog": blog.get("handle"),
                    },
                )
            )
    shop = (await client.query(queries.SHOP_POLICIES)).get("shop") or {}
    for policy in shop.get("shopPolicies") or []:
        kind = str(policy.get("type") or numeric_id(str(policy.get("id"))))
        documents.append(
            Document(
                f"{EXTERNAL_PREFIX}policy:{kind.lower()}",
                str(policy.get("title") or kind)[:MAX_TITLE],
                text_of(str(policy.get("body") or "")),
                {"source": "shopify", "type": "policy", "url": policy.get("url")},
            )
        )
    # A page with no text says nothing an assistant could quote.
    return [d for d in documents if d.body.strip()]


async def apply_documents(scope: TenantScope, documents: list[Document]) -> ContentCounts:
    """The ``shopify`` collection becomes exactly these documents: new ones created,
    changed ones rewritten (and indexed again), the others removed."""
    collection = await knowledge.collection_by_name(scope, COLLECTION, create=True)
    assert collection is not None
    held = {
        item.external_id: item
        for item in await scope.session.scalars(
            scope.select(Item).where(
                Item.kind == ItemKind.DOCUMENT,
                Item.external_id.startswith(EXTERNAL_PREFIX, autoescape=True),
            )
        )
        if item.external_id
    }
    written = removed = 0
    wanted = {d.external_id for d in documents}
    for document in documents:
        item = held.get(document.external_id)
        if item is None:
            await knowledge.create_document(
                scope,
                title=document.title,
                body=document.body,
                external_id=document.external_id,
                collection=COLLECTION,
                metadata=document.metadata,
            )
            written += 1
        elif (item.title, item.body, item.collection_id) != (
            document.title,
            document.body,
            collection.id,
        ):
            await knowledge.update_item(
                scope,
                item.id,
                ItemKind.DOCUMENT,
                knowledge.ItemChanges(
                    title=document.title,
                    body=document.body,
                    collection=COLLECTION,
                    metadata=document.metadata,
                    fields_set={"title", "body", "collection", "metadata"},
                ),
            )
            written += 1
    for external_id, item in held.items():
        if external_id not in wanted:
            await knowledge.delete_item(scope, item.id, ItemKind.DOCUMENT)
            removed += 1
    return ContentCounts(written, removed)


async def sync_content(database: Database, client: AdminClient, shop: ShopifyShop) -> ContentCounts:
    documents = await fetch_documents(client)
    async with database.transaction() as session:
        return await apply_documents(TenantScope(session, shop.organisation_id), documents)
