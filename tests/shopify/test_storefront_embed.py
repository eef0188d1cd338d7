"""The storefront's chat, over real HTTP against the simulator: the install makes the
shop's storefront assistant (its myshopify.com origin and primary domain allowed) and a
job writes the app metafields the theme app extension reads; the storefront with the
embed switched on loads the platform's widget.js with that assistant's key; the uninstall
stops the widget at once, and a reinstall brings it back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cybergine.settings import Settings
from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.simulator.control import CONTROL
from tests.shopify.app_support import SHOP, settings, shopify
from tests.shopify.storefront_support import eventually, shop_products, storefront_platform
from tests.support.server import TLS, LiveServer

__all__ = ["settings", "shopify"]

pytestmark = pytest.mark.slow  # a live server with its worker and the simulator

PRIMARY_DOMAIN = "https://trail-gear.example"
STOREFRONT_ORIGIN = f"https://{SHOP}"


@pytest.fixture
def platform(settings: Settings, shopify: ShopifySimulator) -> Iterator[LiveServer]:
    with storefront_platform(settings, shopify) as server:
        yield server


def _metafields(shopify: ShopifySimulator) -> dict[str, str]:
    with httpx.Client(timeout=10, verify=TLS) as http:
        listed = http.get(f"{shopify.base_url}{CONTROL}/shops/{SHOP}/metafields").json()
    return {m["key"]: m["value"] for m in listed if m["namespace"] == "cybergine"}


def _status(platform: LiveServer, shopify: ShopifySimulator) -> dict[str, Any]:
    answer = httpx.get(
        f"{platform.url}/shopify/api/status",
        headers={
            "Authorization": f"Bearer {shopify.session_token(SHOP)}",
            "Accept": "application/json",
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_the_installed_shops_storefront_loads_its_assistants_widget_until_it_uninstalls(
    platform: LiveServer, shopify: ShopifySimulator
) -> None:
    shopify.seed(SHOP, products=shop_products())
    shopify.shop(SHOP).primary_domain_url = PRIMARY_DOMAIN
    # The merchant opens the app: the session token's first request installs the shop.
    _status(platform, shopify)

    written = eventually(
        lambda: ((m := _metafields(shopify)) and len(m) == 2 and m) or None,
        what="the app metafields",
    )
    assert written["platform_origin"] == platform.url
    key = written["widget_key"]

    with httpx.Client(base_url=platform.url, timeout=20, verify=TLS) as http:
        # The owner's organisation holds the storefront assistant with that key.
        session = http.post(
            "/widget/v1/session",
            json={"widget_key": key, "visitor_token": None},
            headers={"Origin": STOREFRONT_ORIGIN},
        )
        assert session.status_code in (200, 201), session.text
        assert session.headers["access-control-allow-origin"] == STOREFRONT_ORIGIN
        on_primary = http.post(
            "/widget/v1/session",
            json={"widget_key": key, "visitor_token": None},
            headers={"Origin": PRIMARY_DOMAIN},
        )
        assert on_primary.status_code in (200, 201), on_primary.text
        elsewhere = http.post(
            "/widget/v1/session",
            json={"widget_key": key, "visitor_token": None},
            headers={"Origin": "https://rival.example"},
        )
        assert elsewhere.status_code == 403

        storefront = f"{shopify.shop_url(SHOP)}/storefront"
        assert "widget.js" not in http.get(storefront).text  # the embed is off
        switched = http.post(
            f"{shopify.base_url}{CONTROL}/shops/{SHOP}/app-extensions",
            json={"block": "chat-embed", "active": True},
        )
        assert switched.status_code == 200
        script = f'<script src="{platform.url}/widget.js" data-assistant="{key}" async></script>'
        assert script in http.get(storefront).text
        assert http.get(f"{platform.url}/widget.js").status_code == 200

        # The sync the install asked for brought the catalogue.
        synced = eventually(
            lambda: (s := _status(platform, shopify)["sync"]) and s["state"] == "synced" and s,
            what="the full sync",
        )
        assert synced["detail"]["latest"]["status"] == "completed"
        assert synced["products"] == len(shop_products())

        # The shop uninstalls the app: the widget stops answering at once.
        shopify.uninstall(SHOP)
        eventually(
            lambda: (
                http.post(
                    "/widget/v1/session",
                    json={"widget_key": key, "visitor_token": None},
                    headers={"Origin": STOREFRONT_ORIGIN},
                ).status_code
                == 423
                or None
            ),
            what="the widget's refusal after the uninstall",
        )
        # The app's installation is gone, and its metafields with it: no more widget.
        assert "widget.js" not in http.get(storefront).text

        # The merchant installs the app again: the same assistant, its key written again on
        # the new installation, and the widget answers.
        _status(platform, shopify)
        again = eventually(
            lambda: (m := _metafields(shopify)) and len(m) == 2 and m,
            what="the app metafields after the reinstall",
        )
        assert again == written
        assert script in http.get(storefront).text
        reopened = http.post(
            "/widget/v1/session",
            json={"widget_key": key, "visitor_token": None},
            headers={"Origin": STOREFRONT_ORIGIN},
        )
        assert reopened.status_code in (200, 201), reopened.text
