"""A bulk operation's JSONL file read line by line into whole products, and a product of
the GraphQL Admin API turned into the REST shape the catalogue reads (``catalog.shape``).

The file's rules (shopify.dev, bulk operation queries): one JSON object a line; a nested
connection's objects are lines of their own carrying ``__parentId``; an object always
comes *after* its parent, but not necessarily right after it (Shopify's own example file
has a variant of the first product on its last line). Grouping them under their parent
(``groupObjects``) costs Shopify time and risks timeouts, so the reader does not ask for
it and copes with the order as documented:

- it holds a window of the latest products and their children; when the window is full,
  its oldest product is complete enough to write;
- a child whose product left the window already is *late*: it is handed out on its own
  (``Late``), and the sync adds it to the stored product.

Memory is the window, whatever the size of the file. Pure: no database, no I/O.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

PARENT = "__parentId"
GID_PREFIX = "gid://shopify/"
PRODUCT = "Product"
VARIANT = "ProductVariant"
MEDIA_IMAGE = "MediaImage"
COLLECTION = "Collection"


def gid_type(gid: object) -> str | None:
    """``ProductVariant`` of ``gid://shopify/ProductVariant/1``."""
    if not isinstance(gid, str) or not gid.startswith(GID_PREFIX):
        return None
    return gid[len(GID_PREFIX) :].split("/", 1)[0] or None


def numeric_id(gid: str) -> str:
    """The bare id of a global id (``gid://shopify/Product/42`` -> ``42``): the id REST
    payloads (webhooks, exports) carry, so both paths name a product the same way."""
    return gid.rsplit("/", 1)[-1].split("?", 1)[0]


@dataclass
class ProductLines:
    """A product's line and its children's, as read so far."""

    line: int
    node: dict[str, Any]
    variants: list[dict[str, Any]] = field(default_factory=list)
    media: list[dict[str, Any]] = field(default_factory=list)
    collections: list[dict[str, Any]] = field(default_factory=list)

    def adopt(self, child: Mapping[str, Any]) -> bool:
        kind = gid_type(child.get("id"))
        if kind == VARIANT:
            self.variants.append(dict(child))
        elif kind == COLLECTION:
            self.collections.append(dict(child))
        elif kind == MEDIA_IMAGE or kind is None:
            # Media other than images (video, 3D) come as objects without fields.
            if child.get("image"):
                self.media.append(dict(child))
        else:
            return False
        return True


@dataclass(frozen=True)
class Late:
    """A child read after its product was handed out."""

    line: int
    parent_id: str
    child: dict[str, Any]


@dataclass(frozen=True)
class BadLine:
    line: int
    message: str


class Relinker:
    """Feed it the file's lines in order; it yields products once they leave the window,
    late children, and lines it could not read."""

    def __init__(self, window: int = 256) -> None:
        self.window = window
        self._pending: OrderedDict[str, ProductLines] = OrderedDict()

    def feed(self, number: int, raw: bytes | str) -> Iterator[ProductLines | Late | BadLine]:
        try:
            record = json.loads(raw)
        except ValueError:
            yield BadLine(number, "the line is not JSON")
            return
        if not isinstance(record, dict):
            yield BadLine(number, "the line is not a JSON object")
            return
        parent = record.pop(PARENT, None)
        if parent is None:
            if gid_type(record.get("id")) != PRODUCT:
                yield BadLine(number, "a top-level object that is not a product")
                return
            self._pending[record["id"]] = ProductLines(number, record)
            while len(self._pending) > self.window:
                yield self._pending.popitem(last=False)[1]
            return
        owner = self._pending.get(parent)
        if owner is None:
            yield Late(number, parent, record)
        elif not owner.adopt(record):
            yield BadLine(number, f"an object of an unexpected type under {parent}")

    def finish(self) -> Iterator[ProductLines]:
        while self._pending:
            yield self._pending.popitem(last=False)[1]

    def oldest_pending_line(self) -> int | None:
        """The first line not yet handed out (with everything after it): where a run
        resumes once everything handed out is written."""
        return next(iter(self._pending.values())).line if self._pending else None


# --- GraphQL product -> REST shape --------------------------------------------------


# Shopify's status the catalogue does not have: reachable by its link, never listed.
UNLISTED = "unlisted"


def listed_as(shaped: dict[str, Any]) -> dict[str, Any]:
    """An unlisted product as the catalogue keeps it: active but not published, so no
    surface offers it."""
    if str(shaped.get("status") or "").lower() == UNLISTED:
        return {**shaped, "status": "active", "published": False}
    return shaped


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _option_values(variant: Mapping[str, Any], option_names: list[str]) -> dict[str, str | None]:
    selected = {
        str(o.get("name")): o.get("value")
        for o in variant.get("selectedOptions") or []
        if isinstance(o, Mapping)
    }
    values: dict[str, str | None] = {}
    for position, name in enumerate(option_names[:3], start=1):
        values[f"option{position}"] = selected.get(name)
    return values


def rest_variant(variant: Mapping[str, Any], option_names: list[str]) -> dict[str, Any]:
    return {
        "id": numeric_id(str(variant.get("id", ""))),
        "title": variant.get("title"),
        "sku": variant.get("sku"),
        "price": variant.get("price"),
        "compare_at_price": variant.get("compareAtPrice"),
        "inventory_quantity": variant.get("inventoryQuantity"),
        "inventory_policy": _lower(variant.get("inventoryPolicy")),
        **_option_values(variant, option_names),
    }


def rest_image(media: Mapping[str, Any]) -> dict[str, Any]:
    image = media.get("image") or {}
    return {"src": image.get("url"), "alt": media.get("alt") or image.get("altText") or ""}


def rest_product(lines: ProductLines, *, currency: str) -> dict[str, Any]:
    """The product in Shopify's REST resource shape, with its collections' handles."""
    node = lines.node
    option_names = [str(o.get("name")) for o in node.get("options") or [] if isinstance(o, Mapping)]
    variants = sorted(lines.variants, key=lambda v: v.get("position") or 0)
    featured = (node.get("featuredMedia") or {}).get("id")
    media = sorted(lines.media, key=lambda m: m.get("id") != featured)
    return listed_as(
        {
            "id": numeric_id(node["id"]),
            "title": node.get("title"),
            "handle": node.get("handle"),
            "body_html": node.get("descriptionHtml"),
            "vendor": node.get("vendor"),
            "product_type": node.get("productType"),
            "tags": node.get("tags") or [],
            "status": _lower(node.get("status")),
            "url": node.get("onlineStoreUrl"),
            "published": node.get("publishedAt") is not None,
            "updated_at": node.get("updatedAt"),
            "currency": currency,
            "options": [
                {"name": o.get("name"), "values": o.get("values") or []}
                for o in node.get("options") or []
                if isinstance(o, Mapping)
            ],
            "variants": [rest_variant(v, option_names) for v in variants],
            "images": [rest_image(m) for m in media],
            "collections": [c.get("handle") or c.get("title") for c in lines.collections],
        }
    )


def collections_of(lines: ProductLines) -> list[dict[str, Any]]:
    """The product's collections as the catalogue writes them (id, handle, title)."""
    return [
        {
            "external_id": numeric_id(str(c["id"])),
            "handle": c.get("handle") or "",
            "title": c.get("title") or "",
        }
        for c in lines.collections
        if c.get("id")
    ]
