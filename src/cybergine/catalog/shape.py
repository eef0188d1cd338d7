"""A product as Shopify's REST Admin API shapes it, read into a checked ``ProductDraft``.

The one place that says what a valid product is: the API, the product CSV import and
any sync all go through ``read_product``, so a rule (a limit, a price's form) is written
once. Fields Shopify sends that the catalogue does not keep (``created_at``,
``admin_graphql_api_id``, ...) are ignored, so an export loads unchanged. Every refusal
is an ``InvalidInput`` naming the field (``variants[2].price``). Pure: no database.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from cybergine.catalog.models import (
    CURRENCY_LENGTH,
    MAX_ALT_LENGTH,
    MAX_BODY_LENGTH,
    MAX_IMAGES,
    MAX_OPTION_VALUES,
    MAX_OPTIONS,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    MAX_TITLE_LENGTH,
    MAX_URL_LENGTH,
    MAX_VARIANTS,
    InventoryPolicy,
    ProductStatus,
)
from cybergine.errors import InvalidInput

MAX_PRICE = Decimal("999999999999.99")
MAX_QUANTITY = 2**31 - 1
# The option every product without options has, as Shopify names it.
DEFAULT_OPTION = "Title"
DEFAULT_VARIANT_TITLE = "Default Title"
_CURRENCY = re.compile(r"[A-Z]{3}")
_HANDLE_DROPPED = re.compile(r"[^a-z0-9]+")
E = TypeVar("E", ProductStatus, InventoryPolicy)


@dataclass(frozen=True)
class OptionDraft:
    name: str
    values: list[str]


@dataclass(frozen=True)
class VariantDraft:
    title: str
    option1: str | None
    option2: str | None
    option3: str | None
    price: Decimal
    compare_at_price: Decimal | None
    sku: str
    inventory_quantity: int | None
    inventory_policy: InventoryPolicy
    # The ``src`` of the product image shown for this variant.
    image_src: str | None = None


@dataclass(frozen=True)
class ImageDraft:
    src: str
    alt: str


@dataclass(frozen=True)
class ProductDraft:
    title: str
    body_html: str = ""
    vendor: str = ""
    product_type: str = ""
    tags: list[str] = field(default_factory=list)
    status: ProductStatus = ProductStatus.ACTIVE
    handle: str = ""
    url: str | None = None
    published: bool = True
    external_id: str | None = None
    currency: str = "USD"
    options: list[OptionDraft] = field(default_factory=list)
    variants: list[VariantDraft] = field(default_factory=list)
    images: list[ImageDraft] = field(default_factory=list)
    # Handles of the collections that hold it; None: leave them as they are.
    collections: list[str] | None = None


def handle_for(title: str) -> str:
    """Shopify's handle for a title: lower case ASCII letters and digits joined by
    hyphens ("Café Crème 8GB" -> "cafe-creme-8gb")."""
    ascii_only = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return _HANDLE_DROPPED.sub("-", ascii_only.lower()).strip("-")[:MAX_TITLE_LENGTH]


def _text(raw: object, where: str, *, limit: int, required: bool = False) -> str:
    if raw is None:
        raw = ""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InvalidInput(f"`{where}` must be text.", field=where)
    value = str(raw).strip()
    if required and not value:
        raise InvalidInput(f"`{where}` cannot be empty.", field=where)
    if len(value) > limit:
        raise InvalidInput(f"`{where}` is limited to {limit} characters.", field=where)
    return value


def _optional_text(raw: object, where: str, *, limit: int) -> str | None:
    return _text(raw, where, limit=limit) or None


def _price(raw: object, where: str, *, required: bool) -> Decimal | None:
    if raw is None or raw == "":
        if required:
            raise InvalidInput(f"`{where}` is required.", field=where)
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InvalidInput(f"`{where}` must be a number such as 19.99.", field=where)
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation as exc:
        raise InvalidInput(f"`{where}` must be a number such as 19.99.", field=where) from exc
    if not value.is_finite() or value < 0 or value > MAX_PRICE:
        raise InvalidInput(f"`{where}` must be between 0 and {MAX_PRICE}.", field=where)
    if value != value.quantize(Decimal("0.01")):
        raise InvalidInput(f"`{where}` has at most two decimals.", field=where)
    return value.quantize(Decimal("0.01"))


def _quantity(raw: object, where: str) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise ValueError
        value = int(str(raw).strip()) if isinstance(raw, str) else int(raw)
        if isinstance(raw, float) and raw != value:
            raise ValueError
    except ValueError as exc:
        raise InvalidInput(f"`{where}` must be a whole number.", field=where) from exc
    if abs(value) > MAX_QUANTITY:
        raise InvalidInput(f"`{where}` is out of range.", field=where)
    return value


def _choice(raw: object, kind: type[E], default: E, where: str) -> E:
    if raw is None or raw == "":
        return default
    try:
        return kind(str(raw).strip().lower())
    except ValueError as exc:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidInput(f"`{where}` must be one of: {allowed}.", field=where) from exc


def read_tags(raw: object, where: str = "tags") -> list[str]:
    """Tags as Shopify sends them ("a, b, c") or as a list; duplicates dropped."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        parts: list[object] = list(raw.split(","))
    elif isinstance(raw, list):
        parts = raw
    else:
        raise InvalidInput(f"`{where}` must be text (comma-separated) or a list.", field=where)
    tags: list[str] = []
    for index, part in enumerate(parts):
        tag = _text(part, f"{where}[{index}]", limit=MAX_TAG_LENGTH)
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"A product has at most {MAX_TAGS} tags.", field=where)
    return tags


def _list(raw: object, where: str, limit: int) -> list[Mapping[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(x, Mapping) for x in raw):
        raise InvalidInput(f"`{where}` must be a list of objects.", field=where)
    if len(raw) > limit:
        raise InvalidInput(f"A product has at most {limit} {where}.", field=where)
    return raw


def _options(raw: object) -> list[OptionDraft]:
    options: list[OptionDraft] = []
    for index, item in enumerate(_list(raw, "options", MAX_OPTIONS)):
        where = f"options[{index}]"
        name = _text(item.get("name"), f"{where}.name", limit=MAX_TITLE_LENGTH, required=True)
        values_raw = item.get("values") or []
        if not isinstance(values_raw, list) or len(values_raw) > MAX_OPTION_VALUES:
            raise InvalidInput(
                f"`{where}.values` must be a list of at most {MAX_OPTION_VALUES} values.",
                field=f"{where}.values",
            )
        values: list[str] = []
        for number, value in enumerate(values_raw):
            text = _text(value, f"{where}.values[{number}]", limit=MAX_TITLE_LENGTH, required=True)
            if text not in values:
                values.append(text)
        if any(o.name.casefold() == name.casefold() for o in options):
            raise InvalidInput(f"Two options are named “{name}”.", field=f"{where}.name")
        options.append(OptionDraft(name, values))
    return options


def _variant(item: Mapping[str, Any], where: str) -> VariantDraft:
    values = [
        _optional_text(item.get(f"option{n}"), f"{where}.option{n}", limit=MAX_TITLE_LENGTH)
        for n in (1, 2, 3)
    ]
    title = _text(item.get("title"), f"{where}.title", limit=MAX_TITLE_LENGTH)
    return VariantDraft(
        title=title or " / ".join(v for v in values if v) or DEFAULT_VARIANT_TITLE,
        option1=values[0],
        option2=values[1],
        option3=values[2],
        price=_price(item.get("price"), f"{where}.price", required=True) or Decimal("0.00"),
        compare_at_price=_price(
            item.get("compare_at_price"), f"{where}.compare_at_price", required=False
        ),
        sku=_text(item.get("sku"), f"{where}.sku", limit=255),
        inventory_quantity=_quantity(item.get("inventory_quantity"), f"{where}.inventory_quantity"),
        inventory_policy=_choice(
            item.get("inventory_policy"),
            InventoryPolicy,
            InventoryPolicy.DENY,
            f"{where}.inventory_policy",
        ),
        image_src=_optional_text(item.get("image_src"), f"{where}.image_src", limit=MAX_URL_LENGTH),
    )


def _images(raw: object) -> list[ImageDraft]:
    images: list[ImageDraft] = []
    for index, item in enumerate(_list(raw, "images", MAX_IMAGES)):
        where = f"images[{index}]"
        src = _text(item.get("src"), f"{where}.src", limit=MAX_URL_LENGTH, required=True)
        if not src.lower().startswith(("https://", "http://")):
            raise InvalidInput(f"`{where}.src` must be an http(s) URL.", field=f"{where}.src")
        images.append(ImageDraft(src, _text(item.get("alt"), f"{where}.alt", limit=MAX_ALT_LENGTH)))
    return images


def _check_variants(options: list[OptionDraft], variants: list[VariantDraft]) -> None:
    """Each variant gives a value for each option and none beyond; no two variants are
    the same combination."""
    seen: set[tuple[str | None, ...]] = set()
    for index, variant in enumerate(variants):
        combination = (variant.option1, variant.option2, variant.option3)
        for position, value in enumerate(combination, start=1):
            where = f"variants[{index}].option{position}"
            if position <= len(options) and value is None:
                raise InvalidInput(
                    f"`{where}` is required: the product has the option "
                    f"“{options[position - 1].name}”.",
                    field=where,
                )
            if position > len(options) and value is not None and options:
                raise InvalidInput(
                    f"`{where}` has a value but the product has no option {position}.",
                    field=where,
                )
        if combination in seen:
            raise InvalidInput(
                f"`variants[{index}]` repeats another variant's options.",
                field=f"variants[{index}]",
            )
        seen.add(combination)


def _complete_options(
    options: list[OptionDraft], variants: list[VariantDraft]
) -> list[OptionDraft]:
    """Options list every value their variants use (an export may leave ``values``
    out)."""
    completed: list[OptionDraft] = []
    for position, option in enumerate(options, start=1):
        values = list(option.values)
        for variant in variants:
            value = (variant.option1, variant.option2, variant.option3)[position - 1]
            if value is not None and value not in values:
                values.append(value)
        if len(values) > MAX_OPTION_VALUES:
            raise InvalidInput(
                f"An option has at most {MAX_OPTION_VALUES} values.",
                field=f"options[{position - 1}].values",
            )
        completed.append(OptionDraft(option.name, values))
    return completed


def read_product(data: Mapping[str, Any]) -> ProductDraft:
    """A product from its Shopify REST shape (also wrapped as ``{"product": {...}}``)."""
    if set(data) == {"product"} and isinstance(data["product"], Mapping):
        data = data["product"]
    title = _text(data.get("title"), "title", limit=MAX_TITLE_LENGTH, required=True)
    raw_handle = _text(data.get("handle"), "handle", limit=MAX_TITLE_LENGTH)
    handle = handle_for(raw_handle or title)
    if not handle:
        raise InvalidInput(
            "The product needs a handle of letters or digits (from its title or `handle`).",
            field="handle",
        )
    currency = _text(data.get("currency") or "USD", "currency", limit=CURRENCY_LENGTH).upper()
    if not _CURRENCY.fullmatch(currency):
        raise InvalidInput("`currency` must be an ISO 4217 code such as EUR.", field="currency")
    # Shopify's own id, when the product comes from a Shopify export.
    external = data.get("external_id") if data.get("external_id") is not None else data.get("id")
    options = _options(data.get("options"))
    variants = [
        _variant(item, f"variants[{index}]")
        for index, item in enumerate(_list(data.get("variants"), "variants", MAX_VARIANTS))
    ]
    # Shopify's default: no options means the single option "Title".
    if not options and any(v.option1 for v in variants):
        options = [OptionDraft(DEFAULT_OPTION, [])]
    _check_variants(options, variants)
    published = data.get("published")
    if published is None:
        published = data.get("published_at", "unset") is not None
    if not isinstance(published, bool):
        raise InvalidInput("`published` must be true or false.", field="published")
    collections = data.get("collections")
    return ProductDraft(
        title=title,
        body_html=_text(data.get("body_html"), "body_html", limit=MAX_BODY_LENGTH),
        vendor=_text(data.get("vendor"), "vendor", limit=MAX_TITLE_LENGTH),
        product_type=_text(data.get("product_type"), "product_type", limit=MAX_TITLE_LENGTH),
        tags=read_tags(data.get("tags")),
        status=_choice(data.get("status"), ProductStatus, ProductStatus.ACTIVE, "status"),
        handle=handle,
        url=_optional_text(data.get("url"), "url", limit=MAX_URL_LENGTH),
        published=published,
        external_id=_optional_text(external, "external_id", limit=255),
        currency=currency,
        options=_complete_options(options, variants),
        variants=variants,
        images=_images(data.get("images")),
        collections=None if collections is None else read_tags(collections, "collections"),
    )
