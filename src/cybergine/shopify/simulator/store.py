"""What a simulated shop holds: products with variants, options and images, collections,
pages, a blog with articles, legal policies and the app's subscriptions.

Ids are Shopify's: positive integers, one sequence per simulator, shown to GraphQL as
``gid://shopify/{Type}/{id}`` and to webhooks (REST shape) as the bare integer. Products
are kept in id order, which is the order of cursor pagination and of bulk output.

Products enter in Shopify's REST resource shape (``product_from_rest``): the shape of
the REST fixtures and of CSV exports turned into JSON, and the shape product webhooks
carry back out (``product_to_rest``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

GID_PREFIX = "gid://shopify/"
_GID = re.compile(r"gid://shopify/([A-Za-z]+)/([0-9]+)")
_HANDLE_JUNK = re.compile(r"[^a-z0-9]+")
MAX_OPTIONS = 3  # Shopify: a product has at most three options


def gid(kind: str, number: int) -> str:
    return f"{GID_PREFIX}{kind}/{number}"


def parse_gid(value: object) -> tuple[str, int] | None:
    """(type, id) of a global id, or None when it is not one."""
    if not isinstance(value, str):
        return None
    match = _GID.fullmatch(value)
    return (match.group(1), int(match.group(2))) if match else None


def handle_for(title: str) -> str:
    return _HANDLE_JUNK.sub("-", title.lower()).strip("-") or "item"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(moment: dt.datetime | None) -> str | None:
    """Shopify's DateTime: ISO 8601 in UTC with a Z."""
    return None if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(value: object) -> str | None:
    """A decimal string with two places, as Shopify's Money scalar; None stays None."""
    if value is None or value == "":
        return None
    try:
        return str(Decimal(str(value)).quantize(Decimal("0.01")))
    except InvalidOperation as error:
        raise ValueError(f"not an amount: {value!r}") from error


@dataclass
class Image:
    id: int
    url: str
    alt: str | None = None
    width: int = 1024
    height: int = 1024


@dataclass
class Variant:
    id: int
    title: str
    price: str
    options: tuple[str, ...]  # option1..3 values, in the product's option order
    sku: str | None = None
    compare_at_price: str | None = None
    inventory_quantity: int = 0
    inventory_policy: str = "DENY"  # DENY | CONTINUE
    barcode: str | None = None
    position: int = 1
    image_id: int | None = None
    product_id: int = 0  # set when its product is stored
    created_at: dt.datetime = field(default_factory=now)
    updated_at: dt.datetime = field(default_factory=now)

    @property
    def available_for_sale(self) -> bool:
        return self.inventory_quantity > 0 or self.inventory_policy == "CONTINUE"


@dataclass
class Option:
    id: int
    name: str
    values: list[str]


@dataclass
class Product:
    id: int
    title: str
    handle: str
    description_html: str = ""
    vendor: str = ""
    product_type: str = ""
    tags: list[str] = field(default_factory=list)
    status: str = "ACTIVE"  # ACTIVE | ARCHIVED | DRAFT
    options: list[Option] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    published_at: dt.datetime | None = field(default_factory=now)
    created_at: dt.datetime = field(default_factory=now)
    updated_at: dt.datetime = field(default_factory=now)


@dataclass
class Collection:
    id: int
    title: str
    handle: str
    description_html: str = ""
    # Its products' ids in the order added: a dict as an ordered set, so that asking
    # whether a product is in it costs the same for ten products as for ten thousand.
    product_ids: dict[int, None] = field(default_factory=dict)
    updated_at: dt.datetime = field(default_factory=now)


@dataclass
class Page:
    id: int
    title: str
    handle: str
    body: str
    published_at: dt.datetime | None = field(default_factory=now)
    created_at: dt.datetime = field(default_factory=now)
    updated_at: dt.datetime = field(default_factory=now)


@dataclass
class Article:
    id: int
    blog_id: int
    title: str
    handle: str
    body: str
    author: str = "Store team"
    tags: list[str] = field(default_factory=list)
    published_at: dt.datetime | None = field(default_factory=now)
    created_at: dt.datetime = field(default_factory=now)
    updated_at: dt.datetime = field(default_factory=now)


@dataclass
class Blog:
    id: int
    title: str
    handle: str
    created_at: dt.datetime = field(default_factory=now)
    updated_at: dt.datetime = field(default_factory=now)


@dataclass
class Policy:
    id: int
    type: str  # ShopPolicyType: REFUND_POLICY, PRIVACY_POLICY, TERMS_OF_SERVICE, ...
    title: str
    body: str
    updated_at: dt.datetime = field(default_factory=now)


@dataclass
class Subscription:
    id: int
    name: str
    status: str  # AppSubscriptionStatus
    test: bool
    return_url: str
    price: str | None
    currency: str
    interval: str
    trial_days: int = 0
    created_at: dt.datetime = field(default_factory=now)
    updated_at: dt.datetime = field(default_factory=now)


@dataclass
class BulkOperation:
    """A bulk query: its state as BulkOperation reports it, and where its JSONL lies."""

    id: int
    shop: str
    query: str
    status: str = "CREATED"  # BulkOperationStatus
    error_code: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int | None = None
    url: str | None = None
    partial_data_url: str | None = None
    type: str = "QUERY"
    created_at: dt.datetime = field(default_factory=now)
    completed_at: dt.datetime | None = None
    cancel_requested: bool = False


class Ids:
    """One increasing id sequence for everything a simulator makes (thread-safe)."""

    def __init__(self, start: int = 7_000_000_001) -> None:
        self._counter = itertools.count(start)
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            return next(self._counter)

    def seen(self, number: int) -> None:
        """An id given from outside (a fixture): later ids stay above it."""
        with self._lock:
            upcoming = next(self._counter)
            self._counter = itertools.count(max(upcoming, number + 1))


@dataclass
class Metafield:
    """An app-data metafield: owned by the app's installation on the shop, read by the
    app's theme extension as ``app.metafields.<namespace>.<key>``."""

    id: int
    namespace: str
    key: str
    type: str
    value: str
    created_at: dt.datetime = field(default_factory=now)
    updated_at: dt.datetime = field(default_factory=now)


@dataclass
class Shop:
    domain: str
    shop_id: int
    name: str
    email: str
    currency: str = "EUR"
    installed: bool = False
    products: dict[int, Product] = field(default_factory=dict)
    collections: dict[int, Collection] = field(default_factory=dict)
    pages: dict[int, Page] = field(default_factory=dict)
    blogs: dict[int, Blog] = field(default_factory=dict)
    articles: dict[int, Article] = field(default_factory=dict)
    policies: list[Policy] = field(default_factory=list)
    subscriptions: dict[int, Subscription] = field(default_factory=dict)
    app_embeds: dict[str, bool] = field(default_factory=dict)  # block handle: switched on
    app_metafields: dict[int, Metafield] = field(default_factory=dict)
    # The storefront's own domain (``primaryDomain``) when it has one besides myshopify.com.
    primary_domain_url: str | None = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _product_order: list[int] = field(default_factory=list, repr=False)
    _variant_owner: dict[int, int] = field(default_factory=dict, repr=False)

    @property
    def storefront_url(self) -> str:
        return f"https://{self.domain}"

    # -- products, in id order -----------------------------------------------------------

    def put_product(self, product: Product) -> None:
        with self.lock:
            old = self.products.get(product.id)
            if old is None:
                bisect.insort(self._product_order, product.id)
            else:
                for variant in old.variants:
                    self._variant_owner.pop(variant.id, None)
            for variant in product.variants:
                variant.product_id = product.id
                self._variant_owner[variant.id] = product.id
            self.products[product.id] = product

    def remove_product(self, product_id: int) -> Product | None:
        with self.lock:
            product = self.products.pop(product_id, None)
            if product is not None:
                index = bisect.bisect_left(self._product_order, product_id)
                del self._product_order[index]
                for variant in product.variants:
                    self._variant_owner.pop(variant.id, None)
                for collection in self.collections.values():
                    collection.product_ids.pop(product_id, None)
            return product

    def product_ids(self) -> list[int]:
        """A snapshot of the products' ids, in order (safe to walk while others write)."""
        with self.lock:
            return list(self._product_order)

    def variant(self, variant_id: int) -> Variant | None:
        with self.lock:
            product = self.products.get(self._variant_owner.get(variant_id, 0))
        if product is None:
            return None
        return next((v for v in product.variants if v.id == variant_id), None)

    def collections_of(self, product_id: int) -> list[Collection]:
        with self.lock:
            return [c for c in self.collections.values() if product_id in c.product_ids]

    def clear(self) -> None:
        with self.lock:
            self.products.clear()
            self._product_order.clear()
            self._variant_owner.clear()
            self.collections.clear()
            self.pages.clear()
            self.blogs.clear()
            self.articles.clear()
            self.policies.clear()

    def variants_count(self) -> int:
        with self.lock:
            return sum(len(p.variants) for p in self.products.values())


# -- the REST resource shape -------------------------------------------------------------


def _moment(value: object, default: dt.datetime | None) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return default
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return default


def _tags(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(tag).strip() for tag in value if str(tag).strip()]
    if isinstance(value, str):
        return [tag.strip() for tag in value.split(",") if tag.strip()]
    return []


def product_from_rest(data: Mapping[str, Any], ids: Ids) -> Product:
    """A product from Shopify's REST product resource (ids kept when given)."""
    title = str(data.get("title") or "").strip()
    if not title:
        raise ValueError("a product needs a title")
    product_id = _own_id(data.get("id"), ids)
    options = [
        Option(
            _own_id(o.get("id"), ids),
            str(o.get("name") or f"Option{n}"),
            list(o.get("values") or []),
        )
        for n, o in enumerate(data.get("options") or [], start=1)
        if isinstance(o, Mapping)
    ][:MAX_OPTIONS]
    images = [
        Image(
            _own_id(i.get("id"), ids),
            str(i.get("src") or i.get("url") or ""),
            i.get("alt"),
            int(i.get("width") or 1024),
            int(i.get("height") or 1024),
        )
        for i in data.get("images") or []
        if isinstance(i, Mapping) and (i.get("src") or i.get("url"))
    ]
    variants = []
    for position, v in enumerate(data.get("variants") or [], start=1):
        if not isinstance(v, Mapping):
            continue
        values = tuple(
            str(v[f"option{n}"]) for n in range(1, MAX_OPTIONS + 1) if v.get(f"option{n}")
        )
        variants.append(
            Variant(
                id=_own_id(v.get("id"), ids),
                title=str(v.get("title") or " / ".join(values) or "Default Title"),
                price=money(v.get("price") or "0") or "0.00",
                options=values,
                sku=v.get("sku") or None,
                compare_at_price=money(v.get("compare_at_price")),
                inventory_quantity=int(v.get("inventory_quantity") or 0),
                inventory_policy=str(v.get("inventory_policy") or "deny").upper(),
                barcode=v.get("barcode") or None,
                position=position,
                image_id=v.get("image_id"),
            )
        )
    if not options:
        options = [Option(ids.next(), "Title", ["Default Title"])]
    if not variants:
        variants = [Variant(ids.next(), "Default Title", "0.00", ("Default Title",))]
    for option, index in zip(options, range(MAX_OPTIONS), strict=False):
        if not option.values:
            option.values = _unique(v.options[index] for v in variants if len(v.options) > index)
    stamp = now()
    return Product(
        id=product_id,
        title=title,
        handle=str(data.get("handle") or handle_for(title)),
        description_html=str(data.get("body_html") or ""),
        vendor=str(data.get("vendor") or ""),
        product_type=str(data.get("product_type") or ""),
        tags=_tags(data.get("tags")),
        status=str(data.get("status") or "active").upper(),
        options=options,
        variants=variants,
        images=images,
        published_at=_moment(data.get("published_at"), stamp),
        created_at=_moment(data.get("created_at"), stamp) or stamp,
        updated_at=_moment(data.get("updated_at"), stamp) or stamp,
    )


def product_to_rest(product: Product) -> dict[str, Any]:
    """The product as Shopify's REST resource: the body of products/create and /update."""
    variants = [
        {
            "id": v.id,
            "product_id": product.id,
            "title": v.title,
            "price": v.price,
            "position": v.position,
            "inventory_policy": v.inventory_policy.lower(),
            "compare_at_price": v.compare_at_price,
            **{
                f"option{n}": v.options[n - 1] if len(v.options) >= n else None
                for n in range(1, MAX_OPTIONS + 1)
            },
            "created_at": iso(v.created_at),
            "updated_at": iso(v.updated_at),
            "taxable": True,
            "barcode": v.barcode,
            "sku": v.sku,
            "inventory_quantity": v.inventory_quantity,
            "admin_graphql_api_id": gid("ProductVariant", v.id),
            "image_id": v.image_id,
        }
        for v in product.variants
    ]
    images = [
        {
            "id": i.id,
            "product_id": product.id,
            "position": n,
            "alt": i.alt,
            "width": i.width,
            "height": i.height,
            "src": i.url,
            "variant_ids": [v.id for v in product.variants if v.image_id == i.id],
            "admin_graphql_api_id": gid("ProductImage", i.id),
        }
        for n, i in enumerate(product.images, start=1)
    ]
    return {
        "id": product.id,
        "title": product.title,
        "body_html": product.description_html,
        "vendor": product.vendor,
        "product_type": product.product_type,
        "created_at": iso(product.created_at),
        "handle": product.handle,
        "updated_at": iso(product.updated_at),
        "published_at": iso(product.published_at),
        "template_suffix": None,
        "published_scope": "web",
        "tags": ", ".join(product.tags),
        "status": product.status.lower(),
        "admin_graphql_api_id": gid("Product", product.id),
        "variants": variants,
        "options": [
            {
                "id": o.id,
                "product_id": product.id,
                "name": o.name,
                "position": n,
                "values": o.values,
            }
            for n, o in enumerate(product.options, start=1)
        ],
        "images": images,
        "image": images[0] if images else None,
    }


def collection_to_rest(collection: Collection) -> dict[str, Any]:
    """The body of collections/create and /update."""
    return {
        "id": collection.id,
        "handle": collection.handle,
        "title": collection.title,
        "updated_at": iso(collection.updated_at),
        "body_html": collection.description_html,
        "published_at": iso(collection.updated_at),
        "sort_order": "manual",
        "template_suffix": None,
        "published_scope": "web",
        "admin_graphql_api_id": gid("Collection", collection.id),
    }


def page_from_rest(data: Mapping[str, Any], ids: Ids) -> Page:
    title = str(data.get("title") or "").strip()
    if not title:
        raise ValueError("a page needs a title")
    stamp = now()
    return Page(
        id=_own_id(data.get("id"), ids),
        title=title,
        handle=str(data.get("handle") or handle_for(title)),
        body=str(data.get("body_html") or data.get("body") or ""),
        published_at=_moment(data.get("published_at"), None),
        created_at=_moment(data.get("created_at"), stamp) or stamp,
        updated_at=_moment(data.get("updated_at"), stamp) or stamp,
    )


def policy_type(handle_or_type: str) -> str:
    """ShopPolicyType of a REST policy handle (``refund-policy``) or a type name."""
    return handle_or_type.upper().replace("-", "_")


def _own_id(value: object, ids: Ids) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        ids.seen(value)
        return value
    return ids.next()


def _unique(values: Iterator[str] | Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(value, None)
    return list(seen)
