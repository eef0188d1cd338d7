"""The seedable store: a deterministic generated catalogue and the control API."""

from __future__ import annotations

import httpx

from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.simulator.generator import generate_products
from cybergine.shopify.simulator.store import Ids, Shop
from tests.shopify.simulator.conftest import SHOP


def catalogue(seed: int) -> list[tuple[str, str, list[tuple[str, str, int]]]]:
    shop = Shop("x.myshopify.com", 1, "X", "x@example.com")
    generate_products(shop, Ids(), 50, seed=seed)
    return [
        (
            p.title,
            p.description_html,
            [(v.title, v.price, v.inventory_quantity) for v in p.variants],
        )
        for p in shop.products.values()
    ]


def test_the_same_seed_gives_the_same_catalogue() -> None:
    assert catalogue(4) == catalogue(4)
    assert catalogue(4) != catalogue(5)


def test_generated_products_are_complete(simulator: ShopifySimulator) -> None:
    summary = simulator.seed(SHOP, generate={"products": 200}, content=True)
    assert summary["products"] == 200
    assert summary["variants"] == 600
    assert summary["pages"] >= 3
    assert summary["articles"] >= 1
    assert summary["policies"] >= 3
    shop = simulator.shop(SHOP)
    products = list(shop.products.values())
    assert len({p.handle for p in products}) == 200
    for product in products:
        assert [o.name for o in product.options] == ["Size", "Color"]
        assert len(product.variants) == 3
        assert product.images
        assert product.description_html.startswith("<p>")
        for variant in product.variants:
            assert variant.options[0] in product.options[0].values
            assert variant.options[1] in product.options[1].values
    stock = [v.inventory_quantity for p in products for v in p.variants]
    assert 0 in stock
    assert max(stock) > 0
    assert any(v.compare_at_price for p in products for v in p.variants)
    titles = {c.title for c in shop.collections.values()}
    assert {"Shoes", "Jackets", "Sale"} <= titles


def test_the_control_api_seeds_and_reports(simulator: ShopifySimulator, http: httpx.Client) -> None:
    base = f"{simulator.base_url}/_control/shops"
    created = http.post(f"{base}/new-shop.myshopify.com", json={"currency": "USD"}).json()
    assert created["currency"] == "USD"
    seeded = http.post(
        f"{base}/new-shop.myshopify.com/seed",
        json={
            "generate": {"products": 12, "seed": 2},
            "pages": [{"title": "Returns", "body_html": "<p>30 days.</p>"}],
            "policies": [{"handle": "refund-policy", "title": "Refunds", "body": "30 days"}],
            "collections": [{"title": "Staff picks", "product_ids": []}],
        },
    ).json()
    assert seeded["products"] == 12
    assert seeded["pages"] == 1
    assert seeded["policies"] == 1
    assert http.get(f"{base}/new-shop.myshopify.com").json()["variants"] == 36
    reset = http.post(f"{base}/new-shop.myshopify.com/seed", json={"reset": True}).json()
    assert reset["products"] == 0
    bad = http.post(f"{base}/new-shop.myshopify.com/seed", json={"generate": {"products": -1}})
    assert bad.status_code == 422
    assert http.post(f"{base}/not-a-shop.example/seed", json={}).status_code == 422
    assert http.get(f"{base}/unknown.myshopify.com").status_code == 404


def test_app_embeds_switch_on_as_app_bridge_reports_them(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    url = f"{simulator.base_url}/_control/shops/{SHOP}/app-extensions"
    [extension] = http.get(url).json()
    assert extension["handle"] == "cybergine-chat"
    assert extension["type"] == "theme_app_extension"
    assert [(a["handle"], a["status"]) for a in extension["activations"]] == [
        ("chat-embed", "available")
    ]
    [switched] = http.post(url, json={"block": "chat-embed", "active": True}).json()
    assert switched["activations"][0]["status"] == "active"
    assert switched["activations"][0]["target"] == "body"
    assert http.post(url, json={"block": "nope", "active": True}).status_code == 422
