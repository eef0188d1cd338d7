"""The catalogue as Shopify's product CSV: rows grouped by Handle, a bad product reported
by row and column while the others go in, and an export that imports back to the same
catalogue."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cybergine.catalog import csv_format
from cybergine.catalog.csv_format import HEADER, ErrorReport
from cybergine.catalog.shape import read_product
from cybergine.db.engine import Database
from cybergine.errors import InvalidInput
from cybergine.settings import Settings
from tests.support.factories import make_organisation_with_key
from tests.support.server import LiveServer

FIXTURES = Path(__file__).parents[1] / "fixtures" / "shopify" / "admin_api"
IMPORT = "/api/v1/catalog/import"
EXPORT = "/api/v1/catalog/export.csv"
PRODUCTS = "/api/v1/catalog/products"


def _csv(*rows: dict[str, str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HEADER, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


TEE = [
    {
        "Handle": "tee",
        "Title": "Tee",
        "Body (HTML)": '<p>Soft, "organic" cotton,\nwashable</p>',
        "Vendor": "Acme",
        "Type": "Shirts",
        "Tags": "cotton, summer",
        "Published": "TRUE",
        "Option1 Name": "Size",
        "Option1 Value": "S",
        "Option2 Name": "Colour",
        "Option2 Value": "Red",
        "Variant SKU": "TEE-S-R",
        "Variant Inventory Tracker": "shopify",
        "Variant Inventory Qty": "4",
        "Variant Inventory Policy": "deny",
        "Variant Price": "12.50",
        "Variant Compare At Price": "15.00",
        "Image Src": "https://cdn.example/tee-red.png",
        "Image Position": "1",
        "Image Alt Text": "A red tee",
        "Variant Image": "https://cdn.example/tee-red.png",
        "Status": "active",
    },
    {
        "Handle": "tee",
        "Option1 Value": "M",
        "Option2 Value": "Blue",
        "Variant SKU": "TEE-M-B",
        "Variant Price": "12.50",
        "Variant Inventory Policy": "continue",
        "Image Src": "https://cdn.example/tee-blue.png",
        "Image Position": "2",
    },
    {"Handle": "tee", "Image Src": "https://cdn.example/tee-back.png", "Image Position": "3"},
]
MUG = [
    {
        "Handle": "mug",
        "Title": "Mug",
        "Published": "FALSE",
        "Option1 Name": "Title",
        "Option1 Value": "Default Title",
        "Variant Price": "8",
        "Status": "draft",
    }
]
BAD = [
    {
        "Handle": "bad",
        "Title": "Bad",
        "Option1 Name": "Size",
        "Option1 Value": "S",
        "Variant Price": "12.50",
    },
    {"Handle": "bad", "Option1 Value": "M", "Variant Price": "twelve"},
]


def test_rows_group_into_products_by_handle() -> None:
    report = ErrorReport()
    products = list(csv_format.read_products(io.StringIO(_csv(*TEE, *MUG)), report))
    assert report.count == 0
    assert [p.rows for p in products] == [[2, 3, 4], [5]]
    tee = read_product(products[0].data)
    assert [o.name for o in tee.options] == ["Size", "Colour"]
    assert [o.values for o in tee.options] == [["S", "M"], ["Red", "Blue"]]
    assert [(v.sku, str(v.price), v.inventory_quantity) for v in tee.variants] == [
        ("TEE-S-R", "12.50", 4),
        ("TEE-M-B", "12.50", None),
    ]
    assert [i.src for i in tee.images][2] == "https://cdn.example/tee-back.png"
    assert tee.body_html == '<p>Soft, "organic" cotton,\nwashable</p>'
    mug = read_product(products[1].data)
    assert mug.options == []
    assert mug.variants[0].option1 is None
    assert mug.published is False


def test_a_bad_row_breaks_only_its_own_product() -> None:
    huge = {"Handle": "huge", "Title": "Huge", "Body (HTML)": "x" * 200_000, "Variant Price": "1"}
    rows = [
        {**BAD[0], "Published": "maybe"},
        {"Handle": "bad", "Option1 Value": "M", "Variant Price": "1"},
        {"Handle": "bad", "Option1 Value": "L", "Variant Price": "1"},
        {"Handle": "", "Option1 Value": "XL", "Variant Price": "1"},
        huge,
        {"Handle": "huge", "Option1 Value": "M", "Variant Price": "1"},
        {"Handle": "", "Title": "Only a title", "Variant Price": "3"},
        *MUG,
    ]
    report = ErrorReport()
    products = list(csv_format.read_products(io.StringIO(_csv(*rows), newline=""), report))
    assert [(e.row, e.field) for e in report.errors] == [(2, "Published"), (6, None)]
    # The unreadable row's handle is unknown: the row after it starts a product with no
    # title, which the import refuses by its row.
    assert [(p.data["title"], p.rows) for p in products] == [
        ("", [7]),
        ("Only a title", [8]),
        ("Mug", [9]),
    ]


def test_a_file_that_is_not_a_product_csv_is_refused() -> None:
    with pytest.raises(InvalidInput, match="product CSV"):
        list(csv_format.read_products(io.StringIO("a,b\n1,2\n"), ErrorReport()))


@pytest.fixture
async def api(live_server: LiveServer, database: Database) -> AsyncIterator[httpx.Client]:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as client:
        yield client


def _import(api: httpx.Client, text: str | bytes) -> dict[str, Any]:
    body = text.encode() if isinstance(text, str) else text
    response = api.post(IMPORT, content=body, headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def test_a_bad_product_is_reported_by_row_and_the_others_go_in(api: httpx.Client) -> None:
    report = _import(
        api, _csv(*TEE, *BAD, *MUG, {"Handle": "x", "Title": "X", "Published": "maybe"})
    )
    assert (report["created"], report["updated"], report["error_count"]) == (2, 0, 2)
    assert report["errors"][0] == {
        "row": 6,
        "field": "Variant Price",
        "message": "`variants[1].price` must be a number such as 19.99.",
    }
    assert report["errors"][1]["row"] == 8
    assert report["errors"][1]["field"] == "Published"
    handles = sorted(p["handle"] for p in api.get(PRODUCTS).json()["products"])
    assert handles == ["mug", "tee"]
    tee = api.get(PRODUCTS, params={"q": "tee"}).json()["products"][0]
    assert tee["variants"][0]["image_id"] == tee["images"][0]["id"]
    assert [v["available"] for v in tee["variants"]] == [True, True]
    # The same file again updates rather than duplicates.
    again = _import(api, _csv(*TEE, *MUG))
    assert (again["created"], again["updated"]) == (0, 2)


def test_a_csv_updates_the_product_the_api_loaded_and_keeps_its_id(api: httpx.Client) -> None:
    nano = json.loads((FIXTURES / "rest_product_py_01.json").read_text())
    loaded = api.post(PRODUCTS, json=nano).json()
    exported = api.get(EXPORT).text.replace("IPod Nano - 8GB", "iPod Nano (8 GB)")
    report = _import(api, exported)
    assert (report["created"], report["updated"], report["error_count"]) == (0, 1, 0)
    updated = api.get(f"{PRODUCTS}/{loaded['id']}").json()
    assert updated["title"] == "iPod Nano (8 GB)"
    assert updated["external_id"] == str(nano["product"]["id"])


def _catalogue(api: httpx.Client) -> list[dict[str, Any]]:
    volatile = {"id", "image_id", "created_at", "updated_at", "external_id", "collections"}

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in volatile}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    products = api.get(PRODUCTS, params={"limit": 250}).json()["products"]
    return sorted((strip(p) for p in products), key=lambda p: p["handle"])


async def test_export_then_import_gives_the_same_catalogue(
    api: httpx.Client, live_server: LiveServer, database: Database
) -> None:
    _import(api, _csv(*TEE, *MUG))
    for product in json.loads((FIXTURES / "rest_products_01.json").read_text())["products"]:
        assert api.post(PRODUCTS, json=product).status_code == 201
    exported = api.get(EXPORT)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text.splitlines()[0] == ",".join(HEADER)

    _, other_key = await make_organisation_with_key(database, name="Copy")
    with live_server.client(headers={"authorization": f"Bearer {other_key}"}) as copy:
        report = _import(copy, exported.text)
        assert report["error_count"] == 0, report
        assert _catalogue(copy) == _catalogue(api)
        assert copy.get(EXPORT).text == exported.text


def test_uploads_are_limited_and_must_be_utf8_csv(api: httpx.Client, settings: Settings) -> None:
    too_big = b"Handle,Title\n" + b"x,y\n" * (settings.max_upload_bytes // 4 + 1)
    response = api.post(IMPORT, content=too_big, headers={"content-type": "text/csv"})
    assert response.status_code == 413
    latin1 = _csv(*MUG).replace("Mug", "Tasse à café").encode("latin-1")
    response = api.post(IMPORT, content=latin1, headers={"content-type": "text/csv"})
    assert response.status_code == 422
    assert response.json()["field"] == "file"
    response = api.post(IMPORT, content=b"{}", headers={"content-type": "application/json"})
    assert response.status_code == 422
    nul = _csv(*MUG).replace("Mug", "M\x00ug")
    report = _import(api, nul)
    assert report["error_count"] == 1
    assert report["created"] == 0
