"""Bulk query operations: Shopify's JSONL (one object a line, nested connection nodes on
lines of their own with __parentId), one running query per shop, the finish webhook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.webhook_signature import verify_webhook
from tests.shopify.simulator.conftest import CLIENT_ID, CLIENT_SECRET, SHOP, Admin, Receiver

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures/shopify/admin_api"

RUN = """
mutation Run($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""
CURRENT = """
{ currentBulkOperation { id status errorCode objectCount rootObjectCount fileSize url
                          partialDataUrl createdAt completedAt } }
"""
# The query of Shopify's own JSONL example: products with their variants' titles.
FIXTURE_SHAPE_QUERY = """
{ products { edges { node { id variants { edges { node { id title } } } } } } }
"""
SYNC_QUERY = """
{ products { edges { node {
    id title handle descriptionHtml vendor productType tags status onlineStoreUrl updatedAt
    options { name values }
    featuredImage { url altText }
    variants { edges { node { id title sku price compareAtPrice inventoryQuantity
                              inventoryPolicy availableForSale selectedOptions { name value } } } }
    collections { edges { node { id } } }
} } } }
"""


def run(admin: Admin, query: str) -> dict[str, Any]:
    result: dict[str, Any] = admin.data(RUN, {"query": query})["bulkOperationRunQuery"]
    return result


def lines_of(http: httpx.Client, url: str) -> list[dict[str, Any]]:
    answer = http.get(url)
    assert answer.status_code == 200
    return [json.loads(line) for line in answer.text.splitlines()]


def test_the_jsonl_has_the_shape_of_shopifys_example(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    simulator.seed(SHOP, generate={"products": 600, "seed": 3})  # three windows of 250
    admin = Admin(simulator, http)
    started = run(admin, FIXTURE_SHAPE_QUERY)
    assert started["userErrors"] == []
    assert started["bulkOperation"]["status"] == "CREATED"
    simulator.bulk.wait()
    current = admin.data(CURRENT)["currentBulkOperation"]
    assert current["id"] == started["bulkOperation"]["id"]
    assert current["status"] == "COMPLETED"
    assert current["errorCode"] is None
    lines = lines_of(http, current["url"])
    example = [
        json.loads(line)
        for line in (FIXTURE / "bulk_operation_result_01.jsonl").read_text().splitlines()
        if line.strip()
    ]
    assert {frozenset(line) for line in lines} == {frozenset(line) for line in example}
    # Strings, as Shopify's UnsignedInt64.
    assert current["objectCount"] == str(len(lines)) == str(600 * 4)
    assert current["rootObjectCount"] == "600"
    assert int(current["fileSize"]) == len(http.get(current["url"]).content)
    seen: set[str] = set()
    for line in lines:
        if "__parentId" in line:
            assert line["__parentId"] in seen  # a child comes after its parent
            assert line["id"].startswith("gid://shopify/ProductVariant/")
        else:
            assert line["id"].startswith("gid://shopify/Product/")
            seen.add(line["id"])
    assert len(seen) == 600
    node = admin.data(
        "query($id: ID!) { node(id: $id) { ... on BulkOperation { status url } } }",
        {"id": current["id"]},
    )["node"]
    assert node == {"status": "COMPLETED", "url": current["url"]}


def test_the_sync_query_gives_every_product_variant_and_collection(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    simulator.seed(SHOP, generate={"products": 40, "seed": 5})
    admin = Admin(simulator, http)
    assert run(admin, SYNC_QUERY)["userErrors"] == []
    simulator.bulk.wait()
    lines = lines_of(http, admin.data(CURRENT)["currentBulkOperation"]["url"])
    products = [line for line in lines if "__parentId" not in line]
    variants = [line for line in lines if line["id"].startswith("gid://shopify/ProductVariant/")]
    collections = [line for line in lines if line["id"].startswith("gid://shopify/Collection/")]
    assert len(products) == 40
    assert len(variants) == 120
    assert len(collections) >= 40
    assert "variants" not in products[0]
    assert "collections" not in products[0]
    assert products[0]["options"][0]["name"] == "Size"
    assert set(variants[0]) >= {"price", "selectedOptions", "availableForSale", "__parentId"}


def test_up_to_five_bulk_queries_run_at_once_per_shop_since_2026_01(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    simulator.seed(SHOP, generate={"products": 5})
    admin = Admin(simulator, http)
    simulator.bulk.gate.clear()  # operations wait to start
    try:
        started = [run(admin, FIXTURE_SHAPE_QUERY) for _ in range(5)]
        assert all(answer["userErrors"] == [] for answer in started)
        refused = run(admin, FIXTURE_SHAPE_QUERY)
        assert refused == {
            "bulkOperation": None,
            "userErrors": [
                {
                    "field": ["query"],
                    "message": "Bulk operations limit reached. Please try again later.",
                    "code": "LIMIT_REACHED",
                }
            ],
        }
        other = "other-shop.myshopify.com"
        simulator.seed(other, generate={"products": 2})
        assert run(Admin(simulator, http, other), FIXTURE_SHAPE_QUERY)["userErrors"] == []
    finally:
        simulator.bulk.gate.set()
    simulator.bulk.wait()
    first = started[0]["bulkOperation"]["id"]
    found = admin.data("query($id: ID!) { bulkOperation(id: $id) { status } }", {"id": first})
    assert found["bulkOperation"]["status"] == "COMPLETED"
    assert run(admin, FIXTURE_SHAPE_QUERY)["userErrors"] == []


def test_one_bulk_query_at_a_time_before_2026_01(http: httpx.Client) -> None:
    with ShopifySimulator(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, version="2025-10"
    ) as simulator:
        simulator.seed(SHOP, generate={"products": 2})
        admin = Admin(simulator, http)
        simulator.bulk.gate.clear()
        try:
            first = run(admin, FIXTURE_SHAPE_QUERY)["bulkOperation"]["id"]
            refused = run(admin, FIXTURE_SHAPE_QUERY)
        finally:
            simulator.bulk.gate.set()
        assert refused["userErrors"] == [
            {
                "field": ["query"],
                "message": "A bulk query operation for this app and shop is already in "
                f"progress: {first}.",
                "code": "OPERATION_IN_PROGRESS",
            }
        ]


def test_queries_shopify_refuses_in_bulk(simulator: ShopifySimulator, http: httpx.Client) -> None:
    admin = Admin(simulator, http)
    for query, message in (
        ("{ shop { name } }", "at least one connection"),
        ("{ products { nodes { nonsense } } }", "Invalid bulk query"),
        (
            "{ products { nodes { collections { nodes { products { nodes { id } } } } } } }",
            "nesting depth",
        ),
    ):
        errors = run(admin, query)["userErrors"]
        assert errors[0]["code"] == "INVALID"
        assert message in errors[0]["message"]


def test_an_empty_result_completes_without_a_url(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    admin = Admin(simulator, http)
    run(admin, FIXTURE_SHAPE_QUERY)
    simulator.bulk.wait()
    current = admin.data(CURRENT)["currentBulkOperation"]
    assert current["status"] == "COMPLETED"
    assert current["objectCount"] == "0"
    assert current["url"] is None


def test_completion_sends_the_signed_finish_webhook(
    wired: tuple[ShopifySimulator, Receiver], http: httpx.Client
) -> None:
    simulator, receiver = wired
    simulator.seed(SHOP, generate={"products": 3})
    admin = Admin(simulator, http)
    started = run(admin, FIXTURE_SHAPE_QUERY)["bulkOperation"]
    simulator.bulk.wait()
    simulator.webhooks.wait_idle()
    [finish] = [
        r for r in receiver.received if r.headers["x-shopify-topic"] == "bulk_operations/finish"
    ]
    verify_webhook(finish.body, finish.headers["x-shopify-hmac-sha256"], [CLIENT_SECRET])
    payload = json.loads(finish.body)
    assert payload["admin_graphql_api_id"] == started["id"]
    assert payload["status"] == "completed"
    assert payload["type"] == "query"
    assert payload["error_code"] is None
    assert payload["completed_at"]
    assert payload["created_at"]
    assert finish.headers["x-shopify-shop-domain"] == SHOP


def test_a_canceled_operation_ends_canceled_and_says_so(
    wired: tuple[ShopifySimulator, Receiver], http: httpx.Client
) -> None:
    simulator, receiver = wired
    simulator.seed(SHOP, generate={"products": 3})
    admin = Admin(simulator, http)
    simulator.bulk.gate.clear()
    try:
        started = run(admin, FIXTURE_SHAPE_QUERY)["bulkOperation"]
        canceled = admin.data(
            "mutation($id: ID!) { bulkOperationCancel(id: $id) "
            "{ bulkOperation { status } userErrors { message } } }",
            {"id": started["id"]},
        )["bulkOperationCancel"]
        assert canceled == {"bulkOperation": {"status": "CANCELING"}, "userErrors": []}
    finally:
        simulator.bulk.gate.set()
    simulator.bulk.wait()
    assert admin.data(CURRENT)["currentBulkOperation"]["status"] == "CANCELED"
    simulator.webhooks.wait_idle()
    [finish] = [
        r for r in receiver.received if r.headers["x-shopify-topic"] == "bulk_operations/finish"
    ]
    assert json.loads(finish.body)["status"] == "canceled"


@pytest.mark.slow
def test_ten_thousand_products_with_three_variants_each(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    simulator.seed(SHOP, generate={"products": 10_000})
    admin = Admin(simulator, http)
    assert run(admin, SYNC_QUERY)["userErrors"] == []
    simulator.bulk.wait(timeout=120)
    current = admin.data(CURRENT)["currentBulkOperation"]
    assert current["status"] == "COMPLETED"
    assert current["rootObjectCount"] == "10000"
    products = variants = 0
    with http.stream("GET", current["url"]) as answer:
        for line in answer.iter_lines():
            record = json.loads(line)
            products += "__parentId" not in record
            variants += record["id"].startswith("gid://shopify/ProductVariant/")
    assert (products, variants) == (10_000, 30_000)
