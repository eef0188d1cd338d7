"""The GraphQL Admin API subset: Shopify's names and shapes, cursor pagination, query
cost and throttling, billing, over real HTTP with a token from token exchange."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.simulator.cost import LeakyBucket
from tests.shopify.simulator.conftest import SHOP, Admin

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "shopify" / "admin_api"

PRODUCTS = """
query Products($after: String) {
  products(first: 7, after: $after) {
    edges { cursor node { id title } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}
"""

PRODUCT = """
query Product($id: ID!) {
  product(id: $id) {
    id title handle descriptionHtml vendor productType tags status onlineStoreUrl updatedAt
    options { name values }
    featuredImage { url altText }
    media(first: 5) { nodes { ... on MediaImage { id image { url altText } } } }
    variants(first: 10) {
      nodes {
        id title sku price compareAtPrice inventoryQuantity inventoryPolicy availableForSale
        selectedOptions { name value }
      }
    }
    collections(first: 5) { nodes { id title handle } }
  }
}
"""


@pytest.fixture
def admin(simulator: ShopifySimulator, http: httpx.Client) -> Admin:
    simulator.seed(SHOP, generate={"products": 30, "seed": 7}, content=True)
    return Admin(simulator, http)


def test_requests_without_a_valid_token_are_refused_as_shopify_refuses_them(
    simulator: ShopifySimulator, http: httpx.Client, admin: Admin
) -> None:
    url = f"{simulator.shop_url(SHOP)}/admin/api/2026-07/graphql.json"
    for headers in ({}, {"X-Shopify-Access-Token": "shpat_forged"}):
        answer = http.post(url, json={"query": "{ shop { name } }"}, headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {
            "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
        }
    simulator.tokens.expire(admin.token)
    assert admin.post("{ shop { name } }").status_code == 401
    missing = http.post(url, json={}, headers={"X-Shopify-Access-Token": "x"})
    assert missing.status_code == 401  # the token is checked first, as on Shopify


def test_a_request_without_a_query_or_with_a_bad_one(admin: Admin) -> None:
    answer = admin.http.post(
        admin.url, json={"variables": {}}, headers={"X-Shopify-Access-Token": admin.token}
    )
    assert answer.status_code == 400
    assert answer.json() == {"errors": {"query": "Required parameter missing or invalid"}}
    invalid = admin.post("{ shop { nonsense } }")
    assert invalid.status_code == 200
    assert "nonsense" in invalid.json()["errors"][0]["message"]
    unbounded = admin.post("{ products { nodes { id } } }")
    assert unbounded.json()["errors"][0]["message"] == "you must provide one of first or last"
    sorted_otherwise = admin.post("{ products(first: 5, sortKey: TITLE) { nodes { id } } }")
    assert "by ID only" in sorted_otherwise.json()["errors"][0]["message"]


def test_the_shop_its_policies_pages_and_articles(admin: Admin) -> None:
    data = admin.data(
        """{
          shop { name email myshopifyDomain currencyCode
                 shopPolicies { type title body url } }
          pages(first: 10) { nodes { id title handle body isPublished updatedAt } }
          blogs(first: 5) { nodes { title articles(first: 5) { nodes { title } } } }
          articles(first: 10) { nodes { id title handle body isPublished publishedAt } }
        }"""
    )
    shop = data["shop"]
    assert shop["myshopifyDomain"] == SHOP
    assert shop["currencyCode"] == "EUR"
    types = {p["type"] for p in shop["shopPolicies"]}
    assert {"REFUND_POLICY", "PRIVACY_POLICY", "TERMS_OF_SERVICE"} <= types
    assert all(p["url"].startswith(f"https://{SHOP}/policies/") for p in shop["shopPolicies"])
    assert all(p["id"].startswith("gid://shopify/Page/") for p in data["pages"]["nodes"])
    assert data["blogs"]["nodes"][0]["articles"]["nodes"]
    assert all(a["isPublished"] for a in data["articles"]["nodes"])


def test_cursor_pagination_walks_every_product_once(admin: Admin) -> None:
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = admin.data(PRODUCTS, {"after": after})["products"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 5
    assert len(seen) == len(set(seen)) == 30
    backwards = admin.data("{ products(last: 3, reverse: true) { nodes { id } } }")
    assert [n["id"] for n in backwards["products"]["nodes"]] == sorted(seen)[:3][::-1]


def test_a_product_with_its_variants_media_and_collections(
    simulator: ShopifySimulator, admin: Admin
) -> None:
    stored = simulator.shop(SHOP).products[simulator.shop(SHOP).product_ids()[0]]
    product = admin.data(PRODUCT, {"id": f"gid://shopify/Product/{stored.id}"})["product"]
    assert product["title"] == stored.title
    assert product["options"] == [{"name": o.name, "values": o.values} for o in stored.options]
    assert product["featuredImage"]["url"] == stored.images[0].url
    assert product["media"]["nodes"][0]["image"]["url"] == stored.images[0].url
    variants = product["variants"]["nodes"]
    assert len(variants) == 3
    for variant, mine in zip(variants, stored.variants, strict=True):
        assert variant["price"] == mine.price
        assert variant["availableForSale"] is (mine.inventory_quantity > 0)
        assert [o["value"] for o in variant["selectedOptions"]] == list(mine.options)
        assert [o["name"] for o in variant["selectedOptions"]] == ["Size", "Color"]
    assert product["collections"]["nodes"][0]["title"] == stored.product_type
    variant_id = variants[0]["id"]
    node = admin.data(
        "query($id: ID!) { node(id: $id) { id ... on ProductVariant { sku product { id } } } }",
        {"id": variant_id},
    )["node"]
    assert node["product"]["id"] == product["id"]


def test_products_filtered_by_update_time_and_changed_through_the_control_api(
    simulator: ShopifySimulator, admin: Admin
) -> None:
    first = simulator.shop(SHOP).product_ids()[3]
    simulator.update_product(SHOP, first, title="Renamed Boots")
    data = admin.data(
        "{ products(first: 50, query: \"updated_at:>'2026-06-01T00:00:00Z'\") "
        "{ nodes { id title } } }"
    )
    assert data["products"]["nodes"] == [
        {"id": f"gid://shopify/Product/{first}", "title": "Renamed Boots"}
    ]


def test_rest_fixture_products_seed_the_store(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    rest = json.loads((FIXTURES / "rest_products_01.json").read_text())["products"]
    answer = http.post(
        f"{simulator.base_url}/_control/shops/{SHOP}/seed", json={"products": rest, "reset": True}
    )
    assert answer.json()["products"] == len(rest)
    admin = Admin(simulator, http)
    product = admin.data(PRODUCT, {"id": rest[0]["admin_graphql_api_id"]})["product"]
    assert product["title"] == rest[0]["title"]
    assert [v["price"] for v in product["variants"]["nodes"]] == [
        v["price"] for v in rest[0]["variants"]
    ]
    assert [v["sku"] for v in product["variants"]["nodes"]] == [
        v["sku"] for v in rest[0]["variants"]
    ]


def test_every_answer_reports_its_cost_and_the_bucket(admin: Admin) -> None:
    body = admin.post(PRODUCTS).json()
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 7 * 1
    assert cost["actualQueryCost"] == 2 + 7 * 1
    assert cost["throttleStatus"]["maximumAvailable"] == 2000.0
    assert cost["throttleStatus"]["restoreRate"] == 100.0
    assert cost["throttleStatus"]["currentlyAvailable"] <= 2000.0 - cost["actualQueryCost"] + 1
    shallow = admin.post("{ products(first: 100) { nodes { id } } }").json()["extensions"]["cost"]
    assert shallow["requestedQueryCost"] == 102
    assert shallow["actualQueryCost"] == 2 + 30


def test_a_query_above_the_single_query_maximum_is_refused(admin: Admin) -> None:
    body = admin.post(
        "{ products(first: 250) { nodes { variants(first: 250) { nodes { id } } } } }"
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert "data" not in body


def test_a_short_bucket_answers_throttled_with_http_200(
    simulator: ShopifySimulator, admin: Admin
) -> None:
    simulator.set_bucket(SHOP, maximum=50, restore_rate=1, available=5)
    answer = admin.post(PRODUCTS)
    assert answer.status_code == 200
    body = answer.json()
    assert body["errors"][0]["message"] == "Throttled"
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert "data" not in body
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 9
    assert cost["actualQueryCost"] is None
    assert cost["throttleStatus"] == {
        "maximumAvailable": 50.0,
        "currentlyAvailable": 5.0,
        "restoreRate": 1.0,
    }
    assert admin.post("{ shop { name } }").json()["data"]["shop"]["name"] == "Trail Gear"


def test_the_bucket_refills_at_its_restore_rate() -> None:
    bucket = LeakyBucket(100, 10)
    assert bucket.take(100, at=1000.0)
    assert not bucket.take(30, at=1001.0)  # 10 points back after one second
    assert bucket.take(30, at=1003.0)
    bucket.give_back(500)
    assert bucket.status()["currentlyAvailable"] == 100.0


def test_injected_server_errors_answer_first_then_the_api_recovers(
    simulator: ShopifySimulator, http: httpx.Client, admin: Admin
) -> None:
    http.post(
        f"{simulator.base_url}/_control/faults",
        json={"status": 503, "endpoint": "graphql", "times": 2},
    )
    assert [admin.post("{ shop { name } }").status_code for _ in range(3)] == [503, 503, 200]


def test_a_subscription_is_approved_on_its_confirmation_page(
    simulator: ShopifySimulator, http: httpx.Client, admin: Admin
) -> None:
    created = admin.data(
        """mutation Subscribe($lineItems: [AppSubscriptionLineItemInput!]!) {
          appSubscriptionCreate(name: "Pro", returnUrl: "https://app.example/billing?x=1",
                                test: true, lineItems: $lineItems) {
            appSubscription { id status test }
            confirmationUrl
            userErrors { field message }
          }
        }""",
        {
            "lineItems": [
                {
                    "plan": {
                        "appRecurringPricingDetails": {
                            "price": {"amount": "29.00", "currencyCode": "EUR"},
                            "interval": "EVERY_30_DAYS",
                        }
                    }
                }
            ]
        },
    )["appSubscriptionCreate"]
    assert created["userErrors"] == []
    assert created["appSubscription"]["status"] == "PENDING"
    assert created["appSubscription"]["test"] is True
    confirmation = created["confirmationUrl"]
    assert confirmation.startswith(f"{simulator.shop_url(SHOP)}/admin/charges/")
    assert "Pro" in http.get(confirmation).text
    approved = http.post(confirmation, data={"decision": "approve"})
    assert approved.status_code == 303
    location = urlsplit(approved.headers["location"])
    charge_id = created["appSubscription"]["id"].rsplit("/", 1)[1]
    assert parse_qs(location.query) == {"x": ["1"], "charge_id": [charge_id]}
    active = admin.data("{ currentAppInstallation { activeSubscriptions { id status } } }")
    assert active["currentAppInstallation"]["activeSubscriptions"] == [
        {"id": created["appSubscription"]["id"], "status": "ACTIVE"}
    ]
    simulator.webhooks.wait_idle()
    [update] = [d for d in simulator.webhooks.deliveries if d.topic == "app_subscriptions/update"]
    assert update.payload()["app_subscription"]["status"] == "ACTIVE"
    forged = confirmation.replace("signature=", "signature=0")
    assert http.post(forged, data={"decision": "approve"}).status_code == 404


def test_a_subscription_needs_a_name_and_a_plan(admin: Admin) -> None:
    created = admin.data(
        """mutation {
          appSubscriptionCreate(name: "", returnUrl: "https://app.example", lineItems: []) {
            appSubscription { id } confirmationUrl userErrors { field message }
          }
        }"""
    )["appSubscriptionCreate"]
    assert created["appSubscription"] is None
    assert {tuple(e["field"]) for e in created["userErrors"]} == {("name",), ("lineItems",)}
