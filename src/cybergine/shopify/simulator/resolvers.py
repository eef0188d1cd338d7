"""How the Admin API subset (``admin_schema.graphql``) reads a simulated shop.

Connections page as Shopify's do (``pagination.py``); a ``query`` argument is read in
Shopify's search syntax (``search_syntax.py``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol
from urllib.parse import urlsplit

from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema, build_schema

from cybergine.shopify.simulator.pagination import connection
from cybergine.shopify.simulator.search_syntax import product_filter
from cybergine.shopify.simulator.store import (
    Article,
    Blog,
    BulkOperation,
    Collection,
    Image,
    Metafield,
    Page,
    Product,
    Shop,
    Subscription,
    Variant,
    gid,
    iso,
    parse_gid,
)

_TAGS = re.compile(r"<[^>]+>")
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


class Services(Protocol):
    """What the resolvers ask of the simulator beyond the shop's data."""

    def bulk_run(self, shop: Shop, query: str) -> dict[str, Any]: ...
    def bulk_current(self, shop: Shop) -> Any: ...
    def bulk_find(self, shop: Shop, number: int) -> Any: ...
    def bulk_cancel(self, shop: Shop, number: int) -> dict[str, Any]: ...
    def subscription_create(self, shop: Shop, arguments: Mapping[str, Any]) -> dict[str, Any]: ...
    def subscription_cancel(self, shop: Shop, number: int) -> dict[str, Any]: ...
    def metafields_set(self, shop: Shop, inputs: Sequence[Any]) -> dict[str, Any]: ...


@dataclass
class AdminContext:
    shop: Shop
    services: Services
    bulk: bool = False
    # In a bulk operation: the root connection's window (after this id, this many) and
    # where it ended, for the runner's next window.
    window: tuple[int, int] | None = None
    window_end: int | None = None
    window_more: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


Info = GraphQLResolveInfo[AdminContext]


@dataclass(frozen=True)
class MediaView:
    """A product image seen through the Media interface (a MediaImage)."""

    image: Image

    @property
    def id(self) -> int:
        return self.image.id


# -- root fields ---------------------------------------------------------------------------


def _shop(info: Info) -> Shop:
    return info.context.shop


def _products(_: Any, info: Info, **arguments: Any) -> dict[str, Any]:
    if arguments.get("sortKey", "ID") != "ID":
        # Said rather than ignored: a client relying on another order must notice.
        raise GraphQLError("The Shopify simulator orders products by ID only.")
    shop = _shop(info)
    ids = shop.product_ids()
    wanted = product_filter(arguments.get("query"))
    if wanted is not None:
        ids = [n for n in ids if (p := shop.products.get(n)) is not None and wanted(p)]
    return connection(info, ids, shop.products.get, arguments)


def _ordered(objects: Mapping[int, Any]) -> list[int]:
    return sorted(objects)


def _collections(_: Any, info: Info, **arguments: Any) -> dict[str, Any]:
    shop = _shop(info)
    return connection(info, _ordered(shop.collections), shop.collections.get, arguments)


def _pages(_: Any, info: Info, **arguments: Any) -> dict[str, Any]:
    shop = _shop(info)
    return connection(info, _ordered(shop.pages), shop.pages.get, arguments)


def _blogs(_: Any, info: Info, **arguments: Any) -> dict[str, Any]:
    shop = _shop(info)
    return connection(info, _ordered(shop.blogs), shop.blogs.get, arguments)


def _articles(_: Any, info: Info, **arguments: Any) -> dict[str, Any]:
    shop = _shop(info)
    return connection(info, _ordered(shop.articles), shop.articles.get, arguments)


def _by_id(kind: str, table: str) -> Callable[..., Any]:
    def resolve(_: Any, info: Info, id: str) -> Any:
        parsed = parse_gid(id)
        if parsed is None or parsed[0] != kind:
            return None
        return getattr(_shop(info), table).get(parsed[1])

    return resolve


def node_of(info: Info, value: str) -> Any:
    parsed = parse_gid(value)
    if parsed is None:
        raise GraphQLError(f"Invalid global id '{value}'")
    kind, number = parsed
    shop = _shop(info)
    tables: dict[str, Mapping[int, Any]] = {
        "Product": shop.products,
        "Collection": shop.collections,
        "Page": shop.pages,
        "Blog": shop.blogs,
        "Article": shop.articles,
        "AppSubscription": shop.subscriptions,
    }
    if kind in tables:
        return tables[kind].get(number)
    if kind == "ProductVariant":
        return shop.variant(number)
    if kind == "BulkOperation":
        return info.context.services.bulk_find(shop, number)
    return None


def _product_by_handle(_: Any, info: Info, handle: str) -> Product | None:
    shop = _shop(info)
    with shop.lock:
        return next((p for p in shop.products.values() if p.handle == handle), None)


def _current_installation(_: Any, info: Info) -> dict[str, Any]:
    shop = _shop(info)
    with shop.lock:
        active = [s for s in shop.subscriptions.values() if s.status == "ACTIVE"]
    return {
        "id": gid("AppInstallation", shop.shop_id),
        "activeSubscriptions": active,
        "launchUrl": f"https://admin.shopify.com/store/{shop.domain.split('.')[0]}/apps",
    }


def _installation_metafield(
    _: Any, info: Info, key: str, namespace: str | None = None
) -> Metafield | None:
    shop = _shop(info)
    with shop.lock:
        return next(
            (
                m
                for m in shop.app_metafields.values()
                if m.key == key and (namespace is None or m.namespace == namespace)
            ),
            None,
        )


def _installation_metafields(_: Any, info: Info, **arguments: Any) -> dict[str, Any]:
    shop = _shop(info)
    namespace, keys = arguments.get("namespace"), arguments.get("keys")
    with shop.lock:
        ids = sorted(
            m.id
            for m in shop.app_metafields.values()
            if (namespace is None or m.namespace == namespace)
            and (keys is None or f"{m.namespace}.{m.key}" in keys)
        )
    return connection(info, ids, shop.app_metafields.get, arguments)


def _mutation(name: str) -> Callable[..., Any]:
    def resolve(_: Any, info: Info, **arguments: Any) -> Any:
        services: Services = info.context.services
        shop = _shop(info)
        if name == "bulkOperationRunQuery":
            return services.bulk_run(shop, arguments["query"])
        if name == "bulkOperationCancel":
            return services.bulk_cancel(shop, _number(arguments["id"], "BulkOperation"))
        if name == "appSubscriptionCreate":
            return services.subscription_create(shop, arguments)
        if name == "metafieldsSet":
            return services.metafields_set(shop, arguments["metafields"])
        return services.subscription_cancel(shop, _number(arguments["id"], "AppSubscription"))

    return resolve


def _number(value: str, kind: str) -> int:
    parsed = parse_gid(value)
    if parsed is None or parsed[0] != kind:
        raise GraphQLError(f"Invalid id: {value}")
    return parsed[1]


# -- object fields -------------------------------------------------------------------------


def _text(html: str) -> str:
    return " ".join(_TAGS.sub(" ", html).split())


def _image(image: Image | None) -> dict[str, Any] | None:
    if image is None:
        return None
    return {
        "id": gid("ProductImage", image.id),
        "url": image.url,
        "altText": image.alt,
        "width": image.width,
        "height": image.height,
    }


def _variant_options(variant: Variant, info: Info) -> list[dict[str, str]]:
    product = _shop(info).products.get(variant.product_id)
    names = [o.name for o in product.options] if product else []
    return [{"name": n, "value": v} for n, v in zip(names, variant.options, strict=False)]


def _price_range(product: Product, info: Info) -> dict[str, Any]:
    currency = _shop(info).currency
    prices = sorted((float(v.price), v.price) for v in product.variants) or [(0.0, "0.00")]
    return {
        "minVariantPrice": {"amount": prices[0][1], "currencyCode": currency},
        "maxVariantPrice": {"amount": prices[-1][1], "currencyCode": currency},
    }


def _listed(objects: Callable[[Any, Info], Sequence[Any]]) -> Callable[..., Any]:
    """A nested connection over a list held by its parent (variants, images, ...)."""

    def resolve(parent: Any, info: Info, **arguments: Any) -> dict[str, Any]:
        # In the parent's order (variants by position), paged by place in that order.
        items = list(objects(parent, info))
        return connection(info, range(len(items)), items.__getitem__, arguments)

    return resolve


def _collection_products(parent: Collection, info: Info, **arguments: Any) -> Any:
    shop = _shop(info)
    return connection(info, sorted(parent.product_ids), shop.products.get, arguments)


RESOLVERS: dict[str, dict[str, Callable[..., Any]]] = {
    "Query": {
        "shop": lambda _, info: _shop(info),
        "node": lambda _, info, id: node_of(info, id),
        "nodes": lambda _, info, ids: [node_of(info, i) for i in ids],
        "product": _by_id("Product", "products"),
        "productByHandle": _product_by_handle,
        "products": _products,
        "collection": _by_id("Collection", "collections"),
        "collections": _collections,
        "page": _by_id("Page", "pages"),
        "pages": _pages,
        "blog": _by_id("Blog", "blogs"),
        "blogs": _blogs,
        "article": _by_id("Article", "articles"),
        "articles": _articles,
        "currentAppInstallation": _current_installation,
        "bulkOperation": lambda _, info, id: info.context.services.bulk_find(
            _shop(info), _number(id, "BulkOperation")
        ),
        "currentBulkOperation": lambda _, info, type="QUERY": (
            info.context.services.bulk_current(_shop(info)) if type == "QUERY" else None
        ),
    },
    "Mutation": {
        name: _mutation(name)
        for name in (
            "bulkOperationRunQuery",
            "bulkOperationCancel",
            "appSubscriptionCreate",
            "appSubscriptionCancel",
            "metafieldsSet",
        )
    },
    "Shop": {
        "id": lambda s, _: gid("Shop", s.shop_id),
        "contactEmail": lambda s, _: s.email,
        "myshopifyDomain": lambda s, _: s.domain,
        "url": lambda s, _: s.storefront_url,
        "primaryDomain": lambda s, _: _primary_domain(s),
        "currencyCode": lambda s, _: s.currency,
        "shopPolicies": lambda s, _: list(s.policies),
    },
    "ShopPolicy": {
        "id": lambda p, _: gid("ShopPolicy", p.id),
        "url": lambda p, info: (
            f"{_shop(info).storefront_url}/policies/{p.type.lower().replace('_', '-')}"
        ),
        "createdAt": lambda p, _: iso(p.updated_at),
        "updatedAt": lambda p, _: iso(p.updated_at),
    },
    "Product": {
        "id": lambda p, _: gid("Product", p.id),
        "description": lambda p, _: _text(p.description_html),
        "descriptionHtml": lambda p, _: p.description_html,
        "productType": lambda p, _: p.product_type,
        "onlineStoreUrl": lambda p, info: (
            f"{_shop(info).storefront_url}/products/{p.handle}"
            if p.status == "ACTIVE" and p.published_at is not None
            else None
        ),
        "createdAt": lambda p, _: iso(p.created_at),
        "updatedAt": lambda p, _: iso(p.updated_at),
        "publishedAt": lambda p, _: iso(p.published_at),
        "totalInventory": lambda p, _: sum(v.inventory_quantity for v in p.variants),
        "tracksInventory": lambda p, _: True,
        "hasOnlyDefaultVariant": lambda p, _: (
            len(p.variants) == 1 and p.variants[0].title == "Default Title"
        ),
        "options": lambda p, _, first=None: [
            {
                "id": gid("ProductOption", o.id),
                "name": o.name,
                "position": n,
                "values": list(o.values),
                "optionValues": [
                    {
                        "id": gid("ProductOptionValue", o.id * 100 + i),
                        "name": value,
                        "hasVariants": any(value in v.options for v in p.variants),
                    }
                    for i, value in enumerate(o.values)
                ],
            }
            for n, o in enumerate(p.options[:first] if first else p.options, start=1)
        ],
        "variants": _listed(lambda p, _: p.variants),
        "variantsCount": lambda p, _: {"count": len(p.variants), "precision": "EXACT"},
        "featuredImage": lambda p, _: _image(p.images[0] if p.images else None),
        "featuredMedia": lambda p, _: MediaView(p.images[0]) if p.images else None,
        "images": _listed(lambda p, _: p.images),
        "media": _listed(lambda p, _: [MediaView(i) for i in p.images]),
        "collections": _listed(lambda p, info: _shop(info).collections_of(p.id)),
        "priceRangeV2": _price_range,
    },
    "Image": {
        "id": lambda i, _: i["id"] if isinstance(i, dict) else gid("ProductImage", i.id),
        "url": lambda i, _, transform=None: i["url"] if isinstance(i, dict) else i.url,
        "altText": lambda i, _: i["altText"] if isinstance(i, dict) else i.alt,
    },
    "MediaImage": {
        "id": lambda m, _: gid("MediaImage", m.image.id),
        "alt": lambda m, _: m.image.alt,
        "mediaContentType": lambda m, _: "IMAGE",
        "status": lambda m, _: "READY",
        "preview": lambda m, _: {"image": _image(m.image), "status": "READY"},
        "image": lambda m, _: _image(m.image),
    },
    "ProductVariant": {
        "id": lambda v, _: gid("ProductVariant", v.id),
        "displayName": lambda v, info: (
            f"{getattr(_shop(info).products.get(v.product_id), 'title', '')} - {v.title}"
        ),
        "compareAtPrice": lambda v, _: v.compare_at_price,
        "inventoryQuantity": lambda v, _: v.inventory_quantity,
        "inventoryPolicy": lambda v, _: v.inventory_policy,
        "availableForSale": lambda v, _: v.available_for_sale,
        "selectedOptions": _variant_options,
        "image": lambda v, info: _image(
            next(
                (
                    i
                    for i in getattr(_shop(info).products.get(v.product_id), "images", [])
                    if i.id == v.image_id
                ),
                None,
            )
        ),
        "product": lambda v, info: _shop(info).products.get(v.product_id),
        "createdAt": lambda v, _: iso(v.created_at),
        "updatedAt": lambda v, _: iso(v.updated_at),
    },
    "Collection": {
        "id": lambda c, _: gid("Collection", c.id),
        "description": lambda c, _: _text(c.description_html),
        "descriptionHtml": lambda c, _: c.description_html,
        "updatedAt": lambda c, _: iso(c.updated_at),
        "image": lambda c, _: None,
        "products": _collection_products,
        "productsCount": lambda c, _: {"count": len(c.product_ids), "precision": "EXACT"},
    },
    "Page": {
        "id": lambda p, _: gid("Page", p.id),
        "bodySummary": lambda p, _: _summary(p.body),
        "isPublished": lambda p, _: p.published_at is not None,
        "publishedAt": lambda p, _: iso(p.published_at),
        "createdAt": lambda p, _: iso(p.created_at),
        "updatedAt": lambda p, _: iso(p.updated_at),
    },
    "Blog": {
        "id": lambda b, _: gid("Blog", b.id),
        "createdAt": lambda b, _: iso(b.created_at),
        "updatedAt": lambda b, _: iso(b.updated_at),
        "articles": lambda b, info, **arguments: connection(
            info,
            sorted(a.id for a in _shop(info).articles.values() if a.blog_id == b.id),
            _shop(info).articles.get,
            arguments,
        ),
    },
    "Article": {
        "id": lambda a, _: gid("Article", a.id),
        "summary": lambda a, _: _summary(a.body),
        "isPublished": lambda a, _: a.published_at is not None,
        "publishedAt": lambda a, _: iso(a.published_at),
        "createdAt": lambda a, _: iso(a.created_at),
        "updatedAt": lambda a, _: iso(a.updated_at),
        "author": lambda a, _: {"name": a.author},
        "blog": lambda a, info: _shop(info).blogs.get(a.blog_id),
    },
    "AppInstallation": {
        "metafields": _installation_metafields,
        "metafield": _installation_metafield,
    },
    "Metafield": {
        "id": lambda m, _: gid("Metafield", m.id),
        "createdAt": lambda m, _: iso(m.created_at),
        "updatedAt": lambda m, _: iso(m.updated_at),
    },
    "AppSubscription": {
        "id": lambda s, _: gid("AppSubscription", s.id),
        "trialDays": lambda s, _: s.trial_days,
        "returnUrl": lambda s, _: s.return_url,
        "createdAt": lambda s, _: iso(s.created_at),
        "currentPeriodEnd": lambda s, _: None,
    },
    "BulkOperation": {
        "id": lambda b, _: gid("BulkOperation", b.id),
        "createdAt": lambda b, _: iso(b.created_at),
        "completedAt": lambda b, _: iso(b.completed_at),
        # UnsignedInt64 travels as a string.
        "objectCount": lambda b, _: str(b.object_count),
        "rootObjectCount": lambda b, _: str(b.root_object_count),
        "fileSize": lambda b, _: None if b.file_size is None else str(b.file_size),
    },
}

_TYPE_OF = {
    Product: "Product",
    Variant: "ProductVariant",
    Collection: "Collection",
    Page: "Page",
    Blog: "Blog",
    Article: "Article",
    Subscription: "AppSubscription",
    MediaView: "MediaImage",
    BulkOperation: "BulkOperation",
    Metafield: "Metafield",
}


def _primary_domain(shop: Shop) -> dict[str, str]:
    url = shop.primary_domain_url or shop.storefront_url
    return {"host": urlsplit(url).netloc, "url": url}


def _summary(html: str) -> str:
    text = _text(html)
    return text if len(text) <= 150 else text[:150] + "..."


def _resolve_type(value: Any, info: Info, abstract: Any) -> str | None:
    return _TYPE_OF.get(type(value))


@functools.cache
def _snake(name: str) -> str:
    return _SNAKE.sub("_", name).lower()


def field_resolver(source: Any, info: Info, **arguments: Any) -> Any:
    """Dicts by key, objects by the snake_case spelling of the field's name."""
    name = info.field_name
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, _snake(name), None)


@functools.cache
def admin_schema() -> GraphQLSchema:
    sdl = resources.files(__package__).joinpath("admin_schema.graphql").read_text("utf-8")
    schema = build_schema(sdl)
    for type_name, fields in RESOLVERS.items():
        graphql_type = schema.type_map[type_name]
        for field_name, resolve in fields.items():
            graphql_type.fields[field_name].resolve = resolve  # type: ignore[attr-defined]
    for name in ("Node", "Media"):
        schema.type_map[name].resolve_type = _resolve_type  # type: ignore[attr-defined]
    return schema
