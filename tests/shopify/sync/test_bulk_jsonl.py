"""Reading a bulk operation's JSONL file: Shopify's own example file, where a variant of
the first product comes on the last line, after four other products."""

from __future__ import annotations

from pathlib import Path

from cybergine.catalog.shape import read_product
from cybergine.shopify import bulk_jsonl

FIXTURE = Path(__file__).parents[2] / "fixtures/shopify/admin_api/bulk_operation_result_01.jsonl"
FIRST = "gid://shopify/Product/1921569226808"


def _read(window: int) -> tuple[list[bulk_jsonl.ProductLines], list[bulk_jsonl.Late]]:
    relinker = bulk_jsonl.Relinker(window)
    products: list[bulk_jsonl.ProductLines] = []
    late: list[bulk_jsonl.Late] = []
    for number, line in enumerate(FIXTURE.read_bytes().splitlines(), start=1):
        for out in relinker.feed(number, line):
            assert not isinstance(out, bulk_jsonl.BadLine), out
            (products if isinstance(out, bulk_jsonl.ProductLines) else late).append(out)  # type: ignore[arg-type]
    products.extend(relinker.finish())
    return products, late


def test_a_window_wide_enough_relinks_every_child_to_its_product() -> None:
    products, late = _read(window=10)
    assert late == []
    assert next(p.node["id"] for p in products) == FIRST
    first = products[0]
    assert [v["title"] for v in first.variants] == ["70", "52"]
    assert all(len(p.variants) == 1 for p in products[1:])
    assert [p.line for p in products] == [1, 3, 5, 7, 9]


def test_a_child_after_its_product_left_the_window_is_handed_out_late() -> None:
    products, late = _read(window=1)
    assert len(products) == 5
    assert len({p.node["id"] for p in products}) == 5
    assert products[0].variants
    assert products[0].variants[0]["title"] == "70"
    assert [(item.line, item.parent_id, item.child["title"]) for item in late] == [
        (11, FIRST, "52")
    ]


def test_lines_that_are_not_products_or_json_are_reported_and_skipped() -> None:
    relinker = bulk_jsonl.Relinker()
    bad = [*relinker.feed(1, b"{not json"), *relinker.feed(2, b'{"id":"gid://shopify/Shop/1"}')]
    assert [type(b) for b in bad] == [bulk_jsonl.BadLine, bulk_jsonl.BadLine]
    assert list(relinker.finish()) == []


def test_a_graphql_product_reads_as_the_catalogue_reads_a_rest_product() -> None:
    lines = bulk_jsonl.ProductLines(
        1,
        {
            "id": "gid://shopify/Product/42",
            "title": "Trail Runner",
            "handle": "trail-runner",
            "descriptionHtml": "<p>Waterproof</p>",
            "vendor": "Acme",
            "productType": "Shoes",
            "tags": ["trail", "waterproof"],
            "status": "ACTIVE",
            "onlineStoreUrl": "https://shop.example/products/trail-runner",
            "publishedAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-02-01T10:00:00Z",
            "options": [{"name": "Size", "values": ["42", "43"]}],
            "featuredMedia": {"id": "gid://shopify/MediaImage/2"},
        },
    )
    for child in (
        {
            "id": "gid://shopify/ProductVariant/8",
            "title": "43",
            "price": "99.90",
            "compareAtPrice": None,
            "sku": "TR-43",
            "inventoryQuantity": 0,
            "inventoryPolicy": "DENY",
            "position": 2,
            "selectedOptions": [{"name": "Size", "value": "43"}],
        },
        {
            "id": "gid://shopify/ProductVariant/7",
            "title": "42",
            "price": "89.90",
            "compareAtPrice": "120.00",
            "sku": "TR-42",
            "inventoryQuantity": 3,
            "inventoryPolicy": "CONTINUE",
            "position": 1,
            "selectedOptions": [{"name": "Size", "value": "42"}],
        },
        {
            "id": "gid://shopify/MediaImage/1",
            "alt": "side",
            "image": {"url": "https://cdn.example/side.jpg", "altText": None},
        },
        {
            "id": "gid://shopify/MediaImage/2",
            "alt": "",
            "image": {"url": "https://cdn.example/front.jpg", "altText": "front"},
        },
        {},  # a video: no fields asked for it
        {"id": "gid://shopify/Collection/5", "handle": "running", "title": "Running"},
    ):
        assert lines.adopt(child)
    shaped = bulk_jsonl.rest_product(lines, currency="EUR")
    draft = read_product(shaped)
    assert draft.external_id == "42"
    assert draft.currency == "EUR"
    assert draft.status.value == "active"
    assert draft.published
    assert [(v.option1, str(v.price), v.inventory_policy.value) for v in draft.variants] == [
        ("42", "89.90", "continue"),
        ("43", "99.90", "deny"),
    ]
    assert [i.src for i in draft.images] == [
        "https://cdn.example/front.jpg",
        "https://cdn.example/side.jpg",
    ]
    assert [i.alt for i in draft.images] == ["front", "side"]
    assert draft.collections == ["running"]
    assert bulk_jsonl.collections_of(lines) == [
        {"external_id": "5", "handle": "running", "title": "Running"}
    ]
