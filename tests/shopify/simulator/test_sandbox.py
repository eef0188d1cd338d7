"""The Shopify sandbox of a development server: the simulator mounted under /_shopify of
the server's own port, and `cybergine serve --shopify-simulator` wired to it."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from cybergine.settings import Settings
from cybergine.shopify.session_tokens import verify_session_token
from cybergine.shopify.simulator import session_token
from cybergine.shopify.simulator.sandbox import DEMO_SHOP, PREFIX, ShopifySandbox
from tests.shopify.simulator.conftest import CLIENT_ID, CLIENT_SECRET, Admin
from tests.support.processes import clean_env, start_serve, wait_until
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


@pytest.mark.slow
def test_serve_with_the_shopify_simulator_delivers_signed_webhooks_to_itself(
    tmp_path: Path, http: httpx.Client
) -> None:
    env = clean_env(
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        CYBERGINE_SHOPIFY_API_KEY=CLIENT_ID,
        CYBERGINE_SHOPIFY_API_SECRET=CLIENT_SECRET,
    )
    port = free_port()
    server = start_serve(port, env, tmp_path / "serve.log", "--shopify-simulator")
    base = f"http://127.0.0.1:{port}{PREFIX}"
    try:
        subject = session_token(DEMO_SHOP, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        exchanged = http.post(
            f"{base}/shops/{DEMO_SHOP}/admin/oauth/access_token",
            data={
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": subject,
                "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
                "expiring": "1",
            },
        )
        assert exchanged.status_code == 200, exchanged.text
        shop = http.post(
            f"{base}/shops/{DEMO_SHOP}/admin/api/2026-07/graphql.json",
            json={"query": "{ shop { myshopifyDomain } }"},
            headers={"X-Shopify-Access-Token": exchanged.json()["access_token"]},
        )
        assert shop.json()["data"]["shop"]["myshopifyDomain"] == DEMO_SHOP
        sent = http.post(f"{base}/_control/shops/{DEMO_SHOP}/webhooks/shop/redact", json={})
        assert sent.status_code == 202

        def delivered() -> bool:
            return bool(http.get(f"{base}/_control/webhooks").json())

        wait_until(delivered, 30, "the simulator delivered no webhook")
        [delivery] = http.get(f"{base}/_control/webhooks").json()
        # The platform checked the signature with the same client secret and accepted it.
        assert delivery["status"] == 200, delivery
        assert delivery["attempts"] == 1
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
