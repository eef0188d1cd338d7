"""Shopify's product CSV: one row per variant or image, the rows of one product sharing
its Handle; the first row of a product carries the product's own columns.

``read_products`` groups rows by Handle into Shopify-shaped product dicts for
``shape.read_product``, so a CSV product is checked by the same rules as an API one; a
product with a bad row is reported (row number, column, message) and skipped, and the
other products go on. ``write_products`` is the inverse, for exports. Rows are read one at
a time from any iterable of text lines. Pure: no database.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cybergine.catalog.shape import DEFAULT_OPTION, DEFAULT_VARIANT_TITLE, ProductDraft
from cybergine.errors import InvalidInput

# The columns of Shopify's product CSV export, in its order.
HEADER = (
    "Handle",
    "Title",
    "Body (HTML)",
    "Vendor",
    "Type",
    "Tags",
    "Published",
    "Option1 Name",
    "Option1 Value",
    "Option2 Name",
    "Option2 Value",
    "Option3 Name",
    "Option3 Value",
    "Variant SKU",
    "Variant Grams",
    "Variant Inventory Tracker",
    "Variant Inventory Qty",
    "Variant Inventory Policy",
    "Variant Fulfillment Service",
    "Variant Price",
    "Variant Compare At Price",
    "Variant Requires Shipping",
    "Variant Taxable",
    "Variant Barcode",
    "Image Src",
    "Image Position",
    "Image Alt Text",
    "Gift Card",
    "SEO Title",
    "SEO Description",
    "Variant Image",
    "Variant Weight Unit",
    "Cost per item",
    "Status",
)
# Newer Shopify exports name some columns differently; both are read.
ALIASES = {
    "URL handle": "Handle",
    "Description": "Body (HTML)",
    "Product category": "Type",
    "SKU": "Variant SKU",
    "Price": "Variant Price",
    "Compare-at price": "Variant Compare At Price",
    "Inventory quantity": "Variant Inventory Qty",
    "Continue selling when out of stock": "Variant Inventory Policy",
    "Product image URL": "Image Src",
    "Image position": "Image Position",
    "Image alt text": "Image Alt Text",
    "Variant image URL": "Variant Image",
    "Published on online store": "Published",
}
MAX_ROWS = 100_000
MAX_ERRORS_SHOWN = 200
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


@dataclass(frozen=True)
class RowError:
    row: int  # as a spreadsheet numbers rows, the header being 1
    field: str | None
    message: str


@dataclass
class ErrorReport:
    errors: list[RowError] = field(default_factory=list)
    count: int = 0

    def add(self, row: int, field_name: str | None, message: str) -> None:
        self.count += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(RowError(row, field_name, message[:300]))


@dataclass(frozen=True)
class CsvProduct:
    """One product's rows, as a Shopify-shaped dict, and where they are in the file."""

    first_row: int
    rows: list[int]
    data: dict[str, Any]

    def row_of(self, field_name: str | None) -> int:
        """The row a ``shape`` error's field (``variants[2].price``) came from."""
        if field_name and field_name.startswith(("variants[", "images[")):
            kind, _, rest = field_name.partition("[")
            index = int(rest.split("]", 1)[0])
            rows = self.data.get(f"_{kind}_rows", [])
            if index < len(rows):
                return int(rows[index])
        return self.first_row


# The column a field of ``shape``'s errors comes from.
_FIELD_COLUMNS = {
    "title": "Title",
    "handle": "Handle",
    "body_html": "Body (HTML)",
    "vendor": "Vendor",
    "product_type": "Type",
    "tags": "Tags",
    "status": "Status",
    "published": "Published",
    "option1": "Option1 Value",
    "option2": "Option2 Value",
    "option3": "Option3 Value",
    "sku": "Variant SKU",
    "price": "Variant Price",
    "compare_at_price": "Variant Compare At Price",
    "inventory_quantity": "Variant Inventory Qty",
    "inventory_policy": "Variant Inventory Policy",
    "image_src": "Variant Image",
    "src": "Image Src",
    "alt": "Image Alt Text",
}


def column_of(field_name: str | None) -> str | None:
    """The CSV column of a ``shape`` error's field ("variants[2].price": Variant Price)."""
    if not field_name:
        return None
    last = field_name.rsplit(".", 1)[-1].split("[", 1)[0]
    if last == "options":
        return "Option1 Name"
    if last in {"variants", "images"}:
        return None
    return _FIELD_COLUMNS.get(last, field_name)


def _flag(value: str, column: str, row: int) -> bool | None:
    lowered = value.strip().lower()
    if not lowered:
        return None
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _RowRefused(row, column, f"“{value[:40]}” is not TRUE or FALSE.")


class _RowRefused(Exception):
    def __init__(self, row: int, column: str | None, message: str) -> None:
        super().__init__(message)
        self.row, self.column, self.message = row, column, message


def _header(names: list[str]) -> list[str]:
    canonical = [ALIASES.get(name.strip(), name.strip()) for name in names]
    if "Handle" not in canonical and "Title" not in canonical:
        raise InvalidInput(
            "The first line must name the columns of Shopify's product CSV (Handle, Title, …).",
            field="file",
        )
    return canonical


def _start(values: Mapping[str, str], row: int) -> dict[str, Any]:
    published = _flag(values.get("Published", ""), "Published", row)
    status = values.get("Status", "").strip().lower()
    product: dict[str, Any] = {
        "title": values.get("Title", ""),
        "body_html": values.get("Body (HTML)", ""),
        "vendor": values.get("Vendor", ""),
        "product_type": values.get("Type", ""),
        "tags": values.get("Tags", ""),
        "handle": values.get("Handle", "") or values.get("Title", ""),
        "published": True if published is None else published,
        "options": [],
        "variants": [],
        "images": [],
        "_variants_rows": [],
        "_images_rows": [],
    }
    if status:
        product["status"] = status
    for n in (1, 2, 3):
        name = values.get(f"Option{n} Name", "").strip()
        if name and not (n == 1 and name == DEFAULT_OPTION):
            product["options"].append({"name": name, "values": []})
    return product


def _policy(value: str) -> str | None:
    lowered = value.strip().lower()
    # Newer exports say whether to continue selling: TRUE / FALSE.
    return {"true": "continue", "false": "deny"}.get(lowered, lowered or None)


def _add_rows(product: dict[str, Any], values: Mapping[str, str], row: int) -> None:
    if values.get("Variant Price", "").strip() or values.get("Option1 Value", "").strip():
        option_values = [values.get(f"Option{n} Value", "").strip() or None for n in (1, 2, 3)]
        if not product["options"] and option_values[0] == DEFAULT_VARIANT_TITLE:
            option_values[0] = None
        # A file with the tracker column and none named for a variant does not track its
        # stock: the quantity means nothing, and the variant is always available.
        names_tracker = "Variant Inventory Tracker" in values
        tracked = values.get("Variant Inventory Tracker", "").strip()
        quantity = values.get("Variant Inventory Qty", "").strip()
        product["variants"].append(
            {
                "option1": option_values[0],
                "option2": option_values[1],
                "option3": option_values[2],
                "sku": values.get("Variant SKU", ""),
                "price": values.get("Variant Price", ""),
                "compare_at_price": values.get("Variant Compare At Price", "") or None,
                "inventory_quantity": quantity if tracked or not names_tracker else None,
                "inventory_policy": _policy(values.get("Variant Inventory Policy", "")),
                "image_src": values.get("Variant Image", "").strip() or None,
            }
        )
        product["_variants_rows"].append(row)
    src = values.get("Image Src", "").strip()
    if src:
        product["images"].append({"src": src, "alt": values.get("Image Alt Text", "")})
        product["_images_rows"].append(row)


def _records(reader: Iterator[list[str]], report: ErrorReport) -> Iterator[tuple[int, list[str]]]:
    """The rows after the header with their number as a spreadsheet shows it (a quoted
    line break does not start a row); a row the csv module cannot read is reported."""
    number = 1
    while True:
        number += 1
        if number - 1 > MAX_ROWS:
            raise InvalidInput(f"A file holds at most {MAX_ROWS} rows.", field="file")
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.add(number, None, f"this row cannot be read: {exc}.")
            yield number, []  # breaks the product it belongs to
            continue
        yield number, cells


def read_products(lines: Iterable[str], report: ErrorReport) -> Iterator[CsvProduct]:
    """Products in file order; a product whose rows cannot be read is reported and left
    out. ``InvalidInput`` for a file that is not a product CSV at all."""
    reader = csv.reader(lines)
    try:
        header_row = next(reader, None)
    except csv.Error as exc:
        raise InvalidInput(f"The first line cannot be read: {exc}.", field="file") from exc
    if header_row is None:
        return
    header = _header(header_row)
    current: CsvProduct | None = None
    # The product whose rows are skipped after one was refused.
    broken: str | None = None
    for index, cells in _records(reader, report):
        values = dict(zip(header, cells, strict=False))
        handle = values.get("Handle", "").strip()
        if cells and not any(cell.strip() for cell in cells):
            continue
        # A row starts a product when it names another handle, or names none but gives
        # a title (a new product with only a Title); other rows continue the product.
        ongoing = current.data["handle"] if current else broken
        title = values.get("Title", "").strip()
        starts = (handle != "" and handle != ongoing) or (
            handle == "" and (title != "" or ongoing is None)
        )
        if not starts and current is None:
            continue  # a further row of a refused product
        try:
            if not cells:
                raise _RowRefused(index, None, "")  # reported by _records
            if "\x00" in "".join(cells):
                raise _RowRefused(index, None, "the row holds a NUL character.")
            if starts:
                if current is not None:
                    yield current
                current, broken = None, None
                current = CsvProduct(index, [index], _start(values, index))
            else:
                assert current is not None
                current.rows.append(index)
            _add_rows(current.data, values, index)
        except _RowRefused as refused:
            if refused.message:
                report.add(refused.row, refused.column, refused.message)
            broken = handle or (current.data["handle"] if current else title) or None
            current = None
    if current is not None:
        yield current


def _price(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _product_rows(draft: ProductDraft) -> Iterator[dict[str, str]]:
    first: dict[str, str] = {
        "Title": draft.title,
        "Body (HTML)": draft.body_html,
        "Vendor": draft.vendor,
        "Type": draft.product_type,
        "Tags": ", ".join(draft.tags),
        "Published": "TRUE" if draft.published else "FALSE",
        "Status": draft.status.value,
        "Gift Card": "FALSE",
    }
    names = [o.name for o in draft.options] or [DEFAULT_OPTION]
    rows: list[dict[str, str]] = []
    for index, variant in enumerate(draft.variants):
        row = {
            "Variant SKU": variant.sku,
            "Variant Inventory Tracker": "" if variant.inventory_quantity is None else "shopify",
            "Variant Inventory Qty": ""
            if variant.inventory_quantity is None
            else str(variant.inventory_quantity),
            "Variant Inventory Policy": variant.inventory_policy.value,
            "Variant Fulfillment Service": "manual",
            "Variant Price": _price(variant.price),
            "Variant Compare At Price": _price(variant.compare_at_price),
            "Variant Image": variant.image_src or "",
        }
        values = [variant.option1, variant.option2, variant.option3]
        if not draft.options:
            values[0] = DEFAULT_VARIANT_TITLE
        for n, value in enumerate(values, start=1):
            if value is not None:
                row[f"Option{n} Value"] = value
                if index == 0 and n <= len(names):
                    row[f"Option{n} Name"] = names[n - 1]
        rows.append(row)
    for position, image in enumerate(draft.images, start=1):
        if position > len(rows):
            rows.append({})
        rows[position - 1].update(
            {"Image Src": image.src, "Image Position": str(position), "Image Alt Text": image.alt}
        )
    rows = rows or [{}]
    rows[0].update(first)
    for row in rows:
        row["Handle"] = draft.handle
        yield row


def write_products(drafts: Iterable[ProductDraft], *, header: bool = True) -> Iterator[str]:
    """The CSV text, the header line (unless this continues a file) then each product's
    rows, as it is written."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HEADER, restval="", lineterminator="\n")

    def flushed() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    if header:
        writer.writeheader()
        yield flushed()
    for draft in drafts:
        writer.writerows(_product_rows(draft))
        yield flushed()
