"""Webhooks from the simulated shop: signed with the client secret as Shopify signs them,
with Shopify's headers and payload shapes, retried with backoff, a bounded number of times."""

from __future__ import annotations

import datetime as dt
import json
import socket
from pathlib import Path
from typing import Any

import httpx

from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.webhook_signature import verify_webhook
from tests.shopify.simulator.conftest import CLIENT_SECRET, SHOP, Admin, Receiver

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures/shopify"
HEADERS = {
    "x-shopify-topic",
    "x-shopify-hmac-sha256",
    "x-shopify-shop-domain",
    "x-shopify-webhook-id",
    "x-shopify-api-version",
    "x-shopify-triggered-at",
    "x-shopify-event-id",
}


def fixture(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text())


def received(sim: ShopifySimulator, receiver: Receiver, topic: str) -> list[dict[str, Any]]:
    sim.webhooks.wait_idle()
    found = []
    for delivery in receiver.received:
        if delivery.headers["x-shopify-topic"] != topic:
            continue
        assert set(delivery.headers) >= HEADERS
        verify_webhook(delivery.body, delivery.headers["x-shopify-hmac-sha256"], [CLIENT_SECRET])
        assert delivery.headers["x-shopify-shop-domain"] == SHOP
        assert delivery.headers["x-shopify-api-version"] == "2026-07"
        triggered = delivery.headers["x-shopify-triggered-at"]
        assert dt.datetime.fromisoformat(triggered.replace("Z", "+00:00")).tzinfo is not None
        found.append(json.loads(delivery.body))
    return found


def control(sim: ShopifySimulator, http: httpx.Client, method: str, path: str, **body: Any) -> Any:
    answer = http.request(method, f"{sim.base_url}/_control/shops/{SHOP}{path}", json=body)
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else None


def test_a_price_and_stock_change_sends_a_signed_products_update(
    wired: tuple[ShopifySimulator, Receiver], http: httpx.Client
) -> None:
    sim, receiver = wired
    sim.seed(SHOP, generate={"products": 3})
    product = sim.shop(SHOP).products[sim.shop(SHOP).product_ids()[0]]
    variant = product.variants[1]
    changed = control(
        sim,
        http,
        "PATCH",
        f"/products/{product.id}",
        variants=[{"id": variant.id, "price": "12.5", "inventory_quantity": 0}],
    )["product"]
    assert changed["variants"][1]["price"] == "12.50"
    [payload] = received(sim, receiver, "products/update")
    shape = fixture("admin_api/rest_products_01.json")["products"][0]
    for key in ("id", "title", "body_html", "vendor", "product_type", "handle", "tags", "status"):
        assert key in payload
    assert set(payload["variants"][0]) <= set(shape["variants"][0]) | {"image_id"}
    assert payload["variants"][1]["price"] == "12.50"
    assert payload["variants"][1]["inventory_quantity"] == 0
    assert payload["admin_graphql_api_id"] == f"gid://shopify/Product/{product.id}"
    price = Admin(sim, http).data(
        "query($id: ID!) { productVariant: node(id: $id) { ... on ProductVariant { price } } }",
        {"id": f"gid://shopify/ProductVariant/{variant.id}"},
    )
    assert price["productVariant"]["price"] == "12.50"


def test_products_and_collections_are_created_and_deleted_with_their_webhooks(
    wired: tuple[ShopifySimulator, Receiver], http: httpx.Client
) -> None:
    sim, receiver = wired
    rest = fixture("admin_api/rest_products_01.json")["products"][0]
    created = control(sim, http, "POST", "/products", **rest)["product"]
    collection = control(
        sim, http, "POST", "/collections", title="Music", product_ids=[created["id"]]
    )["collection"]
    control(sim, http, "PATCH", f"/collections/{collection['id']}", title="Music players")
    control(sim, http, "DELETE", f"/collections/{collection['id']}")
    control(sim, http, "DELETE", f"/products/{created['id']}")
    assert received(sim, receiver, "products/create")[0]["title"] == rest["title"]
    assert received(sim, receiver, "collections/create")[0]["title"] == "Music"
    assert received(sim, receiver, "collections/update")[0]["title"] == "Music players"
    assert received(sim, receiver, "collections/delete")[0]["id"] == collection["id"]
    assert received(sim, receiver, "products/delete") == [{"id": created["id"]}]
    assert http.delete(f"{sim.base_url}/_control/shops/{SHOP}/products/1").status_code == 404


def test_compliance_webhooks_have_shopifys_shapes(
    wired: tuple[ShopifySimulator, Receiver], http: httpx.Client
) -> None:
    sim, receiver = wired
    customer = {"id": 7, "email": "ada@example.com", "phone": "+4930123456"}
    control(sim, http, "POST", "/webhooks/customers/data_request", customer=customer)
    control(sim, http, "POST", "/webhooks/customers/redact", customer=customer)
    control(sim, http, "POST", "/webhooks/shop/redact")
    shop_id = sim.shop(SHOP).shop_id
    for topic, name in (
        ("customers/data_request", "customers_data_request_01.json"),
        ("customers/redact", "customers_redact_01.json"),
        ("shop/redact", "shop_redact_01.json"),
    ):
        [payload] = received(sim, receiver, topic)
        assert set(payload) == set(fixture(f"webhooks/{name}"))
        assert payload["shop_domain"] == SHOP
        assert payload["shop_id"] == shop_id
        if "customer" in payload:
            assert payload["customer"] == customer


def test_uninstalling_revokes_the_tokens_and_sends_app_uninstalled(
    wired: tuple[ShopifySimulator, Receiver], http: httpx.Client
) -> None:
    sim, receiver = wired
    admin = Admin(sim, http)
    control(sim, http, "POST", "/uninstall")
    [payload] = received(sim, receiver, "app/uninstalled")
    assert set(fixture("webhooks/app_uninstalled_01.json")) <= set(payload)
    assert payload["myshopify_domain"] == SHOP
    assert admin.post("{ shop { name } }").status_code == 401
    assert not sim.shop(SHOP).installed


def test_failed_deliveries_are_retried_with_the_same_webhook_id(
    wired: tuple[ShopifySimulator, Receiver], http: httpx.Client
) -> None:
    sim, receiver = wired
    receiver.statuses = [500, 503]
    control(sim, http, "POST", "/webhooks/shop/redact")
    sim.webhooks.wait_idle()
    attempts = receiver.received
    assert len(attempts) == 3
    assert len({a.headers["x-shopify-webhook-id"] for a in attempts}) == 1
    assert len({a.body for a in attempts}) == 1
    [delivery] = sim.webhooks.deliveries
    assert (delivery.status, delivery.attempts, delivery.delivered) == (200, 3, True)
    listed = http.get(f"{sim.base_url}/_control/webhooks").json()
    assert listed[0]["attempts"] == 3
    assert listed[0]["webhook_id"] == delivery.webhook_id


def test_retries_are_bounded(wired: tuple[ShopifySimulator, Receiver], http: httpx.Client) -> None:
    sim, receiver = wired
    receiver.statuses = [500] * 10
    control(sim, http, "POST", "/webhooks/shop/redact")
    sim.webhooks.wait_idle()
    assert len(receiver.received) == sim.webhooks.attempts == 4
    [delivery] = sim.webhooks.deliveries
    assert delivery.status == 500
    assert not delivery.delivered


def test_an_unreachable_app_is_retried_then_given_up(simulator: ShopifySimulator) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    simulator.webhooks.url = f"http://127.0.0.1:{port}/webhooks/shopify"
    simulator.webhooks.backoff_seconds = 0.01
    simulator.uninstall(SHOP)
    simulator.webhooks.wait_idle()
    [delivery] = simulator.webhooks.deliveries
    assert delivery.status is None
    assert delivery.attempts == 4
    assert "ConnectError" in (delivery.error or "")
