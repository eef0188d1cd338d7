"""The simulator itself: Shopify's admin endpoints for any number of shops, under
``/shops/{shop}``, and its control API under ``/_control`` (see the package docstring)."""

from __future__ import annotations

import asyncio
import html
import json
import secrets
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from cybergine.errors import InvalidInput
from cybergine.shopify.shop_domains import shop_domain
from cybergine.shopify.simulator import admin_graphql, app_bridge, control, storefront
from cybergine.shopify.simulator.billing import Billing, confirmation_signature
from cybergine.shopify.simulator.bulk import BulkOperations
from cybergine.shopify.simulator.control import CONTROL
from cybergine.shopify.simulator.cost import DEFAULT_MAXIMUM, DEFAULT_RESTORE_RATE, LeakyBucket
from cybergine.shopify.simulator.metafields import AppMetafields
from cybergine.shopify.simulator.oauth import OAuthError, TokenAuthority
from cybergine.shopify.simulator.resolvers import AdminContext, Services
from cybergine.shopify.simulator.store import BulkOperation, Ids, Product, Shop
from cybergine.shopify.simulator.webhooks import WebhookSender
from cybergine.web.threaded import ThreadedServer

DEFAULT_VERSION = "2026-07"
_JS = "text/javascript; charset=utf-8"
FAULT_ENDPOINTS = frozenset({"graphql", "token", "bulk_file", "any"})


@dataclass(frozen=True)
class Fault:
    """An injected failure: the next request to ``endpoint`` answers ``status``."""

    status: int
    endpoint: str
    body: str


class _Services:
    """The simulator's services as the resolvers see them."""

    def __init__(self, simulator: ShopifySimulator) -> None:
        self._simulator = simulator

    def bulk_run(self, shop: Shop, query: str) -> dict[str, Any]:
        return self._simulator.bulk.run(shop, query)

    def bulk_current(self, shop: Shop) -> BulkOperation | None:
        return self._simulator.bulk.current(shop)

    def bulk_find(self, shop: Shop, number: int) -> BulkOperation | None:
        return self._simulator.bulk.find(shop, number)

    def bulk_cancel(self, shop: Shop, number: int) -> dict[str, Any]:
        return self._simulator.bulk.cancel(shop, number)

    def subscription_create(self, shop: Shop, arguments: Mapping[str, Any]) -> dict[str, Any]:
        return self._simulator.billing.create(shop, arguments)

    def subscription_cancel(self, shop: Shop, number: int) -> dict[str, Any]:
        return self._simulator.billing.cancel(shop, number)

    def metafields_set(self, shop: Shop, inputs: Sequence[Any]) -> dict[str, Any]:
        return self._simulator.metafields.set(shop, inputs)


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
        self._buckets: dict[str, LeakyBucket] = {}
        self._faults: deque[Fault] = deque()
        self._server: ThreadedServer | None = None
        self.bucket_maximum = DEFAULT_MAXIMUM
        self.bucket_restore_rate = DEFAULT_RESTORE_RATE
        self.webhooks = WebhookSender(client_secret, url=webhook_url, api_version=version)
        self.services: Services = _Services(self)
        self.bulk = BulkOperations(
            self.ids,
            self.webhooks,
            lambda name: f"{self.base_url}/_storage/bulk/{name}",
            lambda: self.services,
            version=version,
        )
        self.billing = Billing(self.ids, self.webhooks, self._confirmation_url)
        self.metafields = AppMetafields(self.ids, client_id)
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
        self.close()  # first: a bulk runner that stops names its file by the server's URL
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def close(self) -> None:
        """Stops bulk runners and webhook deliveries, and removes the bulk files."""
        self.bulk.close()
        self.webhooks.close()

    # -- switches ----------------------------------------------------------------------

    def bucket(self, shop: str) -> LeakyBucket:
        """The app's cost bucket at ``shop``, sized by ``bucket_maximum`` and
        ``bucket_restore_rate`` when first used (``set_bucket`` resizes it)."""
        with self._lock:
            bucket = self._buckets.get(shop)
            if bucket is None:
                bucket = LeakyBucket(self.bucket_maximum, self.bucket_restore_rate)
                self._buckets[shop] = bucket
            return bucket

    def set_bucket(
        self, shop: str, *, maximum: float, restore_rate: float, available: float | None = None
    ) -> LeakyBucket:
        bucket = LeakyBucket(maximum, restore_rate)
        if available is not None:
            bucket.drain(maximum - available)
        with self._lock:
            self._buckets[shop] = bucket
        return bucket

    def fail_next(
        self, *, status: int = 502, endpoint: str = "graphql", times: int = 1, body: str = ""
    ) -> None:
        """The next ``times`` requests to ``endpoint`` ("graphql", "token", "bulk_file" or
        "any") answer ``status`` (a 5xx, for retry tests) with an HTML error page."""
        if endpoint not in FAULT_ENDPOINTS:
            raise ValueError(f"endpoint is one of {sorted(FAULT_ENDPOINTS)}")
        page = body or f"<html><body><h1>{status} Error</h1></body></html>"
        with self._lock:
            self._faults.extend([Fault(status, endpoint, page)] * times)

    def _fault(self, endpoint: str) -> Response | None:
        with self._lock:
            fault = next((f for f in self._faults if f.endpoint in ("any", endpoint)), None)
            if fault is not None:
                self._faults.remove(fault)
        if fault is None:
            return None
        return Response(fault.body, status_code=fault.status, media_type="text/html")

    def _confirmation_url(self, shop: Shop, number: int) -> str:
        signature = confirmation_signature(self.client_secret, shop.domain, number)
        return (
            f"{self.shop_url(shop.domain)}/admin/charges/{self.client_id}/{number}"
            f"/RecurringApplicationCharge/confirm_recurring_application_charge?"
            + urlencode({"signature": signature})
        )

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

    def seed(self, domain: str, **payload: Any) -> dict[str, Any]:
        """Fills a shop (added if new): ``control.seed``'s payload as keywords, e.g.
        ``sim.seed(shop, generate={"products": 100}, content=True)``."""
        return control.seed(self, self.add_shop(domain), payload)

    def update_product(self, domain: str, product_id: int, **changes: Any) -> Product:
        """Changes a product and sends products/update (``control.update_product``)."""
        return control.update_product(self, self.shop(domain), product_id, changes)

    def uninstall(self, domain: str) -> None:
        control.uninstall(self, self.shop(domain))

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
        add("/shops/{shop}/admin/api/{version}/graphql.json", self._graphql, methods=["POST"])
        add("/_storage/bulk/{name}", self._bulk_file, methods=["GET"])
        charge = (
            "/shops/{shop}/admin/charges/{client_id}/{number}"
            "/RecurringApplicationCharge/confirm_recurring_application_charge"
        )
        add(charge, self._charge_page, methods=["GET"])
        add(charge, self._charge_answer, methods=["POST"])
        add("/shops/{shop}/admin/apps/{client_id}", self._admin_frame, methods=["GET"])
        add("/shops/{shop}/storefront", self._storefront, methods=["GET"])
        add(f"/{app_bridge.APP_BRIDGE_SCRIPT}", self._app_bridge, methods=["GET"])
        add("/", self._index, methods=["GET"])
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
        control.add_routes(self)

    async def _access_token(self, request: Request, shop: str) -> Response:
        known = self._known(shop)
        if known is None:
            return _not_found()
        fault = self._fault("token")
        if fault is not None:
            return fault
        form = await _form(request)
        try:
            answer = self.tokens.answer(known.domain, form)
        except OAuthError as error:
            return JSONResponse(error.body, status_code=error.status)
        known.installed = True
        return JSONResponse(answer)

    async def _graphql(self, request: Request, shop: str, version: str) -> Response:
        known = self._known(shop)
        if known is None or version != self.version:
            return _not_found()
        fault = self._fault("graphql")
        if fault is not None:
            return fault
        token = request.headers.get("X-Shopify-Access-Token")
        if self.tokens.shop_of(token) != known.domain:
            return JSONResponse(admin_graphql.INVALID_TOKEN, status_code=401)
        try:
            body: Any = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        context = AdminContext(known, self.services)
        bucket = self.bucket(known.domain)
        # graphql-core runs synchronously: a large page must not stall other requests.
        status, answer = await asyncio.to_thread(admin_graphql.run, context, body, bucket)
        return JSONResponse(answer, status_code=status)

    async def _bulk_file(self, name: str) -> Response:
        fault = self._fault("bulk_file")
        if fault is not None:
            return fault
        path = self.bulk.file(name)
        if path is None:
            return _not_found()
        return FileResponse(path, media_type="application/jsonl")

    async def _charge_page(
        self, request: Request, shop: str, client_id: str, number: int
    ) -> Response:
        subscription = self._charge(request, shop, client_id, number)
        if subscription is None:
            return _not_found()
        price = f"{subscription.price} {subscription.currency}" if subscription.price else "usage"
        test = " (test charge)" if subscription.test else ""
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Approve subscription</title></head><body><h1>{html.escape(subscription.name)}"
            f"</h1><p>{html.escape(price)}{test}, status {subscription.status}</p>"
            "<form method='post'><button name='decision' value='approve'>Approve</button> "
            "<button name='decision' value='decline'>Decline</button></form></body></html>"
        )
        return HTMLResponse(page)

    async def _charge_answer(
        self, request: Request, shop: str, client_id: str, number: int
    ) -> Response:
        subscription = self._charge(request, shop, client_id, number)
        known = self._known(shop)
        if subscription is None or known is None:
            return _not_found()
        form = await _form(request)
        self.billing.decide(known, number, approve=form.get("decision") == "approve")
        separator = "&" if "?" in subscription.return_url else "?"
        return RedirectResponse(
            f"{subscription.return_url}{separator}charge_id={number}", status_code=303
        )

    def _charge(self, request: Request, shop: str, client_id: str, number: int) -> Any:
        known = self._known(shop)
        signature = request.query_params.get("signature", "")
        expected = confirmation_signature(self.client_secret, shop.lower(), number)
        if known is None or client_id != self.client_id:
            return None
        if not secrets.compare_digest(signature, expected):
            return None
        return known.subscriptions.get(number)

    async def _admin_frame(self, request: Request, shop: str, client_id: str) -> Response:
        known = self._known(shop)
        if known is None or client_id != self.client_id or not self.app_url:
            return _not_found()
        frame = self.launch_url(known.domain, path=request.query_params.get("path", ""))
        token_url = f"{self.base_url}{CONTROL}/shops/{known.domain}/session-token"
        return HTMLResponse(app_bridge.admin_page(known.domain, frame, token_url))

    async def _storefront(self, shop: str) -> Response:
        known = self._known(shop)
        if known is None:
            return _not_found()
        return HTMLResponse(storefront.storefront_page(known))

    async def _index(self) -> Response:
        """A page for people: the simulated shops, each with its admin around the app."""
        with self._lock:
            shops = sorted(self._shops.values(), key=lambda shop: shop.domain)
        items = "".join(
            f"<li><strong>{html.escape(shop.name)}</strong> ({html.escape(shop.domain)}, "
            f"{len(shop.products)} products): "
            + (
                f"<a href='{html.escape(self.shop_url(shop.domain))}/admin/apps/"
                f"{html.escape(self.client_id)}'>open the app in its admin</a>"
                if self.app_url
                else "no app URL set"
            )
            + f", <a href='{html.escape(self.shop_url(shop.domain))}/storefront'>its storefront</a>"
            + "</li>"
            for shop in shops
        )
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<title>Shopify simulator</title></head><body><h1>Shopify simulator</h1>"
            f"<ul>{items or '<li>No shop yet.</li>'}</ul></body></html>"
        )
        return HTMLResponse(page)

    async def _app_bridge(self) -> Response:
        return Response(app_bridge.app_bridge_script(), media_type=_JS)

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
