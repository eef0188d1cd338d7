"""App-data metafields (``metafieldsSet`` on ``currentAppInstallation``) and the simulated
storefront, which renders the theme app extension's embed with them while the merchant
has it switched on."""

from __future__ import annotations

import httpx

from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.simulator.control import CONTROL
from tests.shopify.simulator.conftest import SHOP, Admin

INSTALLATION = "query { currentAppInstallation { id } }"
METAFIELDS = """
query { currentAppInstallation {
  metafields(first: 10) { nodes { namespace key type value } }
  metafield(namespace: "cybergine", key: "widget_key") { value }
} }
"""
SET = """
mutation Set($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) {
    metafields { id namespace key value type }
    userErrors { field message code elementIndex }
  }
}
"""


def _field(owner: str, key: str, value: str, kind: str = "single_line_text_field") -> dict:
    return {"ownerId": owner, "namespace": "cybergine", "key": key, "value": value, "type": kind}


def test_metafields_set_on_the_installation_are_read_back_and_updated_in_place(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    admin = Admin(simulator, http)
    owner = admin.data(INSTALLATION)["currentAppInstallation"]["id"]
    assert owner.startswith("gid://shopify/AppInstallation/")
    first = admin.data(
        SET,
        {
            "metafields": [
                _field(owner, "widget_key", "wk_first"),
                _field(owner, "platform_origin", "https://cybergine.example", "url"),
            ]
        },
    )["metafieldsSet"]
    assert first["userErrors"] == []
    again = admin.data(SET, {"metafields": [_field(owner, "widget_key", "wk_second")]})
    assert again["metafieldsSet"]["metafields"][0]["id"] == first["metafields"][0]["id"]
    read = admin.data(METAFIELDS)["currentAppInstallation"]
    assert {(m["key"], m["value"]) for m in read["metafields"]["nodes"]} == {
        ("widget_key", "wk_second"),
        ("platform_origin", "https://cybergine.example"),
    }
    assert read["metafield"] == {"value": "wk_second"}
    # No type: the app's reserved namespace, and a new metafield needs a type.
    unnamed = admin.data(SET, {"metafields": [{"ownerId": owner, "key": "plan", "value": "x"}]})
    assert unnamed["metafieldsSet"]["userErrors"][0]["code"] == "BLANK"
    named = admin.data(
        SET,
        {"metafields": [{"ownerId": owner, "key": "plan", "value": "x", "type": "boolean"}]},
    )
    assert named["metafieldsSet"]["userErrors"][0]["code"] == "INVALID_VALUE"


def test_bad_input_is_refused_with_user_errors_and_nothing_is_written(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    admin = Admin(simulator, http)
    owner = admin.data(INSTALLATION)["currentAppInstallation"]["id"]
    refused = admin.data(
        SET,
        {
            "metafields": [
                _field(owner, "widget_key", "wk_good"),
                _field(owner, "platform_origin", "not a url", "url"),
                _field("gid://shopify/Product/1", "widget_key", "x"),
                _field(owner, "k", "x"),
                _field(owner, "widget_key", " "),
            ]
        },
    )["metafieldsSet"]
    assert refused["metafields"] is None
    assert [(e["field"], e["code"], e["elementIndex"]) for e in refused["userErrors"]] == [
        (["metafields", "1", "value"], "INVALID_VALUE", 1),
        (["metafields", "2", "ownerId"], "DISALLOWED_OWNER_TYPE", 2),
        (["metafields", "3", "key"], "TOO_SHORT", 3),
        (["metafields", "4", "value"], "BLANK", 4),
    ]
    too_many = admin.data(SET, {"metafields": [_field(owner, f"key{i}", "x") for i in range(26)]})[
        "metafieldsSet"
    ]
    assert too_many["userErrors"][0]["code"] == "LESS_THAN_OR_EQUAL_TO"
    # Atomic: the good one of the refused call was not written either.
    assert admin.data(METAFIELDS)["currentAppInstallation"]["metafields"]["nodes"] == []


def test_the_storefront_loads_the_widget_only_with_the_embed_on_and_its_metafields_set(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    simulator.seed(SHOP, generate={"products": 3, "seed": 1})
    storefront = f"{simulator.shop_url(SHOP)}/storefront"
    page = http.get(storefront)
    assert page.status_code == 200
    assert "<h1>Trail Gear</h1>" in page.text
    assert "<script" not in page.text

    control = f"{simulator.base_url}{CONTROL}/shops/{SHOP}"
    switched = http.post(f"{control}/app-extensions", json={"block": "chat-embed", "active": True})
    assert switched.status_code == 200
    # On, but the app has not set its metafields yet: the block renders nothing.
    assert "<script" not in http.get(storefront).text

    admin = Admin(simulator, http)
    owner = admin.data(INSTALLATION)["currentAppInstallation"]["id"]
    admin.data(
        SET,
        {
            "metafields": [
                _field(owner, "widget_key", "wk_3f9a1c"),
                _field(owner, "platform_origin", "https://cybergine.example", "url"),
            ]
        },
    )
    assert http.get(f"{control}/metafields").json() == [
        {"namespace": "cybergine", "key": k, "type": t, "value": v}
        for k, t, v in (
            ("widget_key", "single_line_text_field", "wk_3f9a1c"),
            ("platform_origin", "url", "https://cybergine.example"),
        )
    ]
    assert (
        '<script src="https://cybergine.example/widget.js" data-assistant="wk_3f9a1c" async>'
        in http.get(storefront).text
    )
    http.post(f"{control}/app-extensions", json={"block": "chat-embed", "active": False})
    assert "<script" not in http.get(storefront).text
    assert (
        http.get(f"{simulator.base_url}/shops/unknown.myshopify.com/storefront").status_code == 404
    )


def test_the_primary_domain_is_the_storefronts_own_when_it_has_one(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    admin = Admin(simulator, http)
    query = "query { shop { primaryDomain { host url } } }"
    assert admin.data(query)["shop"]["primaryDomain"] == {
        "host": SHOP,
        "url": f"https://{SHOP}",
    }
    control = f"{simulator.base_url}{CONTROL}/shops/{SHOP}/primary-domain"
    assert http.post(control, json={"url": "https://trail-gear.example"}).status_code == 204
    assert admin.data(query)["shop"]["primaryDomain"] == {
        "host": "trail-gear.example",
        "url": "https://trail-gear.example",
    }
    assert http.post(control, json={"url": "https://trail-gear.example/shop"}).status_code == 422
