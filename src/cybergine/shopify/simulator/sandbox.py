"""The Shopify sandbox of a development server (``cybergine serve --shopify-simulator``).

Shopify's side is played by the simulator, mounted in the server's own process and port
under ``/_shopify``: the server reaches a shop's admin through ``shopify_admin_url``
(``http://127.0.0.1:8000/_shopify/shops/{shop}``) exactly as it would reach Shopify, and
loads the stand-in for App Bridge from ``shopify_app_bridge_url``; the simulator sends its
webhooks to the server's ``/webhooks/shopify``, signed with the app's client secret.

The demo shop (``cybergine-demo.myshopify.com``) is stocked with a generated catalogue,
pages, a blog and legal policies. Once the server answers, the sandbox opens the app for
it as the merchant would: the embedded app's first session-token request makes the
platform exchange the token and connect the shop (to the demo organisation, which
``cybergine demo`` linked to it) and sync its catalogue. A person opens the app at
``/_shopify/shops/cybergine-demo.myshopify.com/admin/apps/{client_id}``: the simulated
admin frames the embedded app at the server's root.

The simulator's tokens are kept in the data directory, so a restarted server's stored
token still works (the catalogue is generated the same way on every start).
"""

from __future__ import annotations

import secrets
import threading
import time

import httpx
import structlog
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from cybergine.settings import Settings
from cybergine.shopify.simulator import DEMO_SHOP, DEMO_SHOP_NAME
from cybergine.shopify.simulator.server import ShopifySimulator
from cybergine.tls import client_context

PREFIX = "/_shopify"
DEMO_PRODUCTS = 300
# Used when no client id is configured: a development value, as Shopify's are opaque.
SANDBOX_CLIENT_ID = "cybergine-sandbox-client-id"
READY_PATH = "/readyz"
STARTUP_SECONDS = 120.0  # an embedded database's first start and migrations take a while

log = structlog.get_logger(__name__)


class ShopifySandbox:
    def __init__(self, settings: Settings, server_url: str) -> None:
        secret = settings.shopify_api_secret
        # Without a configured client secret the sandbox makes one up for this run: the
        # webhooks and session tokens still pass the same signature checks as Shopify's.
        self.client_secret = secret.get_secret_value() if secret else secrets.token_urlsafe(32)
        self.client_id = settings.shopify_api_key or SANDBOX_CLIENT_ID
        self.server_url = server_url
        self.simulator = ShopifySimulator(
            client_id=self.client_id,
            client_secret=self.client_secret,
            webhook_url=f"{server_url}/webhooks/shopify",
            app_url=f"{server_url}/",
            base_url=f"{server_url}{PREFIX}",
            version=settings.shopify_api_version,
        )
        self.simulator.tokens.keep_in(settings.data_dir / "shopify-simulator" / "tokens.json")

    def start(self, settings: Settings) -> Settings:
        """Stocks the demo shop; the settings the server must run with to use it."""
        self.simulator.add_shop(DEMO_SHOP, name=DEMO_SHOP_NAME, email="owner@example.com")
        self.simulator.seed(DEMO_SHOP, generate={"products": DEMO_PRODUCTS}, content=True)
        return settings.model_copy(
            update={
                "shopify_api_key": self.client_id,
                "shopify_api_secret": SecretStr(self.client_secret),
                "shopify_admin_url": self.simulator.admin_url,
                "shopify_app_bridge_url": self.simulator.app_bridge_url,
            }
        )

    @property
    def admin_page(self) -> str:
        """Where a person opens the demo shop's admin with the app in it."""
        return f"{self.simulator.shop_url(DEMO_SHOP)}/admin/apps/{self.client_id}"

    def mount(self, app: ASGIApp) -> ASGIApp:
        """``app`` with the simulator answering under ``PREFIX``; everything else, and the
        lifespan, goes to ``app`` untouched."""
        simulator = self.simulator.app

        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            path = scope.get("path", "")
            if scope["type"] == "http" and (path == PREFIX or path.startswith(PREFIX + "/")):
                # The path stays whole: Starlette routes on the path below root_path.
                scope = dict(scope, root_path=scope.get("root_path", "") + PREFIX)
                await simulator(scope, receive, send)
                return
            await app(scope, receive, send)

        return serve

    def open_app_when_ready(self, path: str) -> threading.Thread:
        """Once the server is ready, makes the embedded app's first request for the demo
        shop (``path``, with a fresh session token), as its admin page would: the platform
        connects the shop and syncs it. In a thread; the outcome is logged."""

        def open_app() -> None:
            with httpx.Client(timeout=60.0, verify=client_context()) as client:
                deadline = time.monotonic() + STARTUP_SECONDS
                while time.monotonic() < deadline:
                    try:
                        if client.get(f"{self.server_url}{READY_PATH}").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.2)  # the server is starting: look again shortly
                token = self.simulator.session_token(DEMO_SHOP)
                try:
                    answer = client.get(
                        f"{self.server_url}{path}", headers={"Authorization": f"Bearer {token}"}
                    )
                except httpx.HTTPError as error:
                    log.warning("shopify sandbox could not open the app", error=str(error))
                    return
                if answer.status_code == 200:
                    log.info("shopify sandbox connected the demo shop", shop=DEMO_SHOP)
                else:
                    log.warning(
                        "shopify sandbox: the app refused the demo shop",
                        status=answer.status_code,
                        body=answer.text[:300],
                    )

        thread = threading.Thread(target=open_app, name="shopify-sandbox-open", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.simulator.close()
