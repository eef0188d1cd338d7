"""The simulator itself: Shopify's admin endpoints for any number of shops, under
``/shops/{shop}``, and its control API under ``/_control`` (see the package docstring)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from cybergine.errors import InvalidInput
from cybergine.shopify.shop_domains import shop_domain
from cybergine.shopify.simulator import app_bridge
from cybergine.shopify.simulator.oauth import OAuthError, TokenAuthority
from cybergine.shopify.simulator.store import Ids, Shop
from cybergine.web.threaded import ThreadedServer

DEFAULT_VERSION = "2026-07"
CONTROL = "/_control"
_JS = "text/javascript; charset=utf-8"


class ShopifySimulator:
    """Shopify's admin for simulated shops (``with`` serves it on 127.0.0.1 in a thread;
    ``app`` is the ASGI app to mount elsewhere, with ``base_url`` set to where it is)."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        webhook_url: str | None = None,
        app_url: str | None = None,
        base_url: str | None = None,
        version: str = DEFAULT_VERSION,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_url = webhook_url
        self.app_url = app_url
        self.version = version
        self.tokens = TokenAuthority(client_id, client_secret)
        self.ids = Ids()
        self._base_url = base_url
        self._lock = threading.Lock()
        self._shops: dict[str, Shop] = {}
        self._server: ThreadedServer | None = None
        self.app = FastAPI(title="Shopify simulator", openapi_url=None, docs_url=None)
        self._routes()

    # -- where it is -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._base_url is not None:
            return self._base_url
        if self._server is None:
            raise RuntimeError("the simulator is not running (use it in a with block)")
        return self._server.url

    @property
    def admin_url(self) -> str:
        """The template for ``settings.shopify_admin_url``: a shop's admin origin."""
        return f"{self.base_url}/shops/{{shop}}"

    @property
    def app_bridge_url(self) -> str:
        """Where the stand-in for Shopify's App Bridge script is served."""
        return f"{self.base_url}/{app_bridge.APP_BRIDGE_SCRIPT}"

    def shop_url(self, shop: str) -> str:
        return self.admin_url.format(shop=shop)

    def __enter__(self) -> ShopifySimulator:
        server = ThreadedServer(self.app, name="Shopify simulator", graceful_seconds=3)
        server.start()
        self._server = server
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    # -- shops -------------------------------------------------------------------------

    def add_shop(
        self,
        domain: str,
        *,
        name: str | None = None,
        email: str | None = None,
        currency: str = "EUR",
    ) -> Shop:
        """A shop (or the one already there under that domain)."""
        domain = shop_domain(domain)
        with self._lock:
            shop = self._shops.get(domain)
            if shop is None:
                label = domain.removesuffix(".myshopify.com")
                shop = Shop(
                    domain=domain,
                    shop_id=self.ids.next(),
                    name=name or label.replace("-", " ").title(),
                    email=email or f"owner@{label}.example",
                    currency=currency,
                )
                self._shops[domain] = shop
            return shop

    def shop(self, domain: str) -> Shop:
        with self._lock:
            found = self._shops.get(domain)
        if found is None:
            raise KeyError(domain)
        return found

    def _known(self, domain: str) -> Shop | None:
        with self._lock:
            return self._shops.get(domain.lower())

    def session_token(self, domain: str, **claims: Any) -> str:
        """A session token for the shop's admin user (the shop is added if new)."""
        shop = self.add_shop(domain)
        return app_bridge.session_token(
            shop.domain, client_id=self.client_id, client_secret=self.client_secret, **claims
        )

    def launch_url(self, domain: str, *, path: str = "") -> str:
        """Where the admin would open the embedded app for the shop."""
        if not self.app_url:
            raise RuntimeError("set app_url to launch the embedded app")
        shop = self.add_shop(domain)
        return app_bridge.launch_url(
            self.app_url,
            shop.domain,
            client_id=self.client_id,
            client_secret=self.client_secret,
            path=path,
        )

    # -- routes ------------------------------------------------------------------------

    def _routes(self) -> None:
        add = self.app.add_api_route
        add("/shops/{shop}/admin/oauth/access_token", self._access_token, methods=["POST"])
        add("/shops/{shop}/admin/apps/{client_id}", self._admin_frame, methods=["GET"])
        add(f"/{app_bridge.APP_BRIDGE_SCRIPT}", self._app_bridge, methods=["GET"])
        add(f"{CONTROL}/shops/{{shop}}", self._control_shop, methods=["POST"])
        add(
            f"{CONTROL}/shops/{{shop}}/session-token",
            self._control_session_token,
            methods=["POST"],
        )
        add(f"{CONTROL}/shops/{{shop}}/tokens", self._control_tokens, methods=["GET"])
        add(
            f"{CONTROL}/shops/{{shop}}/tokens/expire",
            self._control_expire_tokens,
            methods=["POST"],
        )

    async def _access_token(self, request: Request, shop: str) -> Response:
        known = self._known(shop)
        if known is None:
            return _not_found()
        form = await _form(request)
        try:
            answer = self.tokens.answer(known.domain, form)
        except OAuthError as error:
            return JSONResponse(error.body, status_code=error.status)
        known.installed = True
        return JSONResponse(answer)

    async def _admin_frame(self, request: Request, shop: str, client_id: str) -> Response:
        known = self._known(shop)
        if known is None or client_id != self.client_id or not self.app_url:
            return _not_found()
        frame = self.launch_url(known.domain, path=request.query_params.get("path", ""))
        token_url = f"{self.base_url}{CONTROL}/shops/{known.domain}/session-token"
        return HTMLResponse(app_bridge.admin_page(known.domain, frame, token_url))

    async def _app_bridge(self) -> Response:
        return Response(app_bridge.app_bridge_script(), media_type=_JS)

    async def _control_shop(self, request: Request, shop: str) -> Response:
        body = await _json(request)
        try:
            created = self.add_shop(
                shop,
                name=body.get("name"),
                email=body.get("email"),
                currency=str(body.get("currency") or "EUR"),
            )
        except InvalidInput as error:
            return _control_error(str(error.detail))
        return JSONResponse(_shop_summary(created))

    async def _control_session_token(self, shop: str) -> Response:
        """A fresh session token, as App Bridge would hand the app (any page may ask:
        the stand-in script runs on the platform's origin)."""
        try:
            token = self.session_token(shop)
        except InvalidInput as error:
            return _control_error(str(error.detail))
        return JSONResponse({"token": token}, headers={"Access-Control-Allow-Origin": "*"})

    async def _control_tokens(self, shop: str) -> Response:
        return JSONResponse({"access_tokens": self.tokens.issued(shop.lower())})

    async def _control_expire_tokens(self, shop: str) -> Response:
        for token in self.tokens.issued(shop.lower()):
            self.tokens.expire(token)
        return Response(status_code=204)


# -- helpers -------------------------------------------------------------------------------


def _shop_summary(shop: Shop) -> dict[str, Any]:
    return {
        "domain": shop.domain,
        "id": shop.shop_id,
        "name": shop.name,
        "email": shop.email,
        "currency": shop.currency,
        "installed": shop.installed,
        "products": len(shop.products),
    }


async def _form(request: Request) -> dict[str, str]:
    """A token request's parameters: Shopify takes a form or a JSON object."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            loaded = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


async def _json(request: Request) -> Mapping[str, Any]:
    raw = await request.body()
    try:
        loaded = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _not_found() -> Response:
    # Shopify answers an unknown shop or path with a plain 404 page.
    return Response("Not Found", status_code=404, media_type="text/plain")


def _control_error(detail: str, status: int = 422) -> Response:
    return JSONResponse({"error": detail}, status_code=status)
