"""The Shopify sandbox of a development server: the simulator mounted under /_shopify of
the server's own port, and `cybergine serve --shopify-simulator` wired to it."""

from __future__ import annotations

import html
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from cybergine.demo import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD
from cybergine.settings import Settings
from cybergine.shopify.session_tokens import verify_session_token
from cybergine.shopify.simulator import DEMO_SHOP
from cybergine.shopify.simulator.generator import generate_products
from cybergine.shopify.simulator.sandbox import DEMO_PRODUCTS, PREFIX, ShopifySandbox
from cybergine.shopify.simulator.store import Ids, Shop
from tests.shopify.simulator.conftest import CLIENT_ID, CLIENT_SECRET, Admin
from tests.support.browser import Browser
from tests.support.processes import clean_env, run_cli, start_serve, wait_until
from tests.support.server import LiveServer, free_port


@pytest.fixture
def mounted() -> Iterator[tuple[ShopifySandbox, Settings, LiveServer]]:
    platform = FastAPI()
    platform.add_api_route("/healthz", lambda: PlainTextResponse("ok"), methods=["GET"])
    served: dict[str, object] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await served["app"](scope, receive, send)  # type: ignore[operator]

    with LiveServer(app) as server:
        configured = Settings(shopify_api_key=CLIENT_ID, shopify_api_secret=CLIENT_SECRET)
        sandbox = ShopifySandbox(configured, server.url)
        settings = sandbox.start(configured)
        served["app"] = sandbox.mount(platform)
        try:
            yield sandbox, settings, server
        finally:
            sandbox.stop()


def test_the_server_is_pointed_at_the_mounted_simulator(
    mounted: tuple[ShopifySandbox, Settings, LiveServer], http: httpx.Client
) -> None:
    _, settings, server = mounted
    assert settings.shopify_admin_url == f"{server.url}{PREFIX}/shops/{{shop}}"
    assert settings.shopify_app_bridge_url == f"{server.url}{PREFIX}/app-bridge.js"
    assert settings.shopify_api_key == CLIENT_ID
    assert settings.shopify_api_secret is not None
    assert http.get(f"{server.url}/healthz").text == "ok"
    assert http.get(settings.shopify_app_bridge_url).status_code == 200
    assert "cybergine-demo.myshopify.com" in http.get(f"{server.url}{PREFIX}/").text
    token = http.post(f"{server.url}{PREFIX}/_control/shops/{DEMO_SHOP}/session-token").json()
    verify_session_token(
        token["token"],
        client_id=CLIENT_ID,
        secrets=[settings.shopify_api_secret.get_secret_value()],
    )


def test_the_demo_shop_is_stocked_and_bulk_files_are_served_under_the_prefix(
    mounted: tuple[ShopifySandbox, Settings, LiveServer], http: httpx.Client
) -> None:
    sandbox, _, server = mounted
    admin = Admin(sandbox.simulator, http, DEMO_SHOP)
    assert admin.url.startswith(f"{server.url}{PREFIX}/shops/{DEMO_SHOP}/admin/api/")
    data = admin.data("{ shop { name } products(first: 1) { nodes { title } } }")
    assert data["shop"]["name"] == "Cybergine Demo Outdoor"
    assert data["products"]["nodes"]
    admin.data(
        'mutation { bulkOperationRunQuery(query: "{ products { edges { node { id } } } }") '
        "{ userErrors { message } } }"
    )
    sandbox.simulator.bulk.wait()
    url = admin.data("{ currentBulkOperation { url } }")["currentBulkOperation"]["url"]
    assert url.startswith(f"{server.url}{PREFIX}/_storage/bulk/")
    assert len(http.get(url).text.splitlines()) == 300
    frame = http.get(sandbox.admin_page)
    assert frame.status_code == 200
    assert f"{server.url}/?" in frame.text


@pytest.mark.slow  # `cybergine demo` and `cybergine serve` as processes
def test_make_run_connects_the_demo_shop_and_syncs_its_catalogue(tmp_path: Path) -> None:
    env = clean_env(
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        CYBERGINE_SHOPIFY_API_KEY=CLIENT_ID,
        CYBERGINE_SHOPIFY_API_SECRET=CLIENT_SECRET,
    )
    run_cli("demo", env=env)
    port = free_port()
    server = start_serve(port, env, tmp_path / "serve.log", "--shopify-simulator")
    base = f"http://127.0.0.1:{port}"
    expected = Shop(DEMO_SHOP, 1, "Demo", "demo@example.com")
    titles = [p.title for p in generate_products(expected, Ids(), DEMO_PRODUCTS)]
    browser = Browser(base)
    try:
        with httpx.Client(base_url=f"{base}{PREFIX}", timeout=10) as simulator:

            def finished() -> bool:
                deliveries = simulator.get("/_control/webhooks").json()
                return any(
                    d["topic"] == "bulk_operations/finish" and d["status"] == 200
                    for d in deliveries
                )

            # The platform exchanged a session token, ran a bulk query and accepted the
            # signed finish webhook.
            wait_until(finished, 120, "the demo shop's full sync never finished its bulk query")
            assert simulator.get(f"/_control/shops/{DEMO_SHOP}/tokens").json()["access_tokens"]
        browser.sign_in(DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD)

        def synced() -> bool:
            page = browser.get(f"/catalog?{urlencode({'q': titles[-1]})}")
            return html.escape(titles[-1]) in page.text

        wait_until(synced, 120, "the demo organisation's catalogue never showed the shop's")
    finally:
        browser.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
