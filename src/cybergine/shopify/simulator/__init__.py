"""A local Shopify for tests, benchmarks and the demo: the admin endpoints the platform
calls, App Bridge's session tokens, signed webhooks and a seedable store.

Written from shopify.dev's documented formats, so the platform's own client code talks to
it through ``settings.shopify_admin_url`` exactly as it talks to Shopify::

    with ShopifySimulator(client_id="id", client_secret="secret", webhook_url=...) as sim:
        settings.shopify_admin_url = sim.admin_url       # http://127.0.0.1:P/shops/{shop}
        sim.seed("demo.myshopify.com", generate={"products": 100}, content=True)
        token = sim.session_token("demo.myshopify.com")  # what App Bridge hands the app
        sim.update_product("demo.myshopify.com", 7000000006, title="New")  # products/update
        sim.bulk.wait(); sim.webhooks.wait_idle()         # background work, for tests

``with`` serves it on 127.0.0.1 in a thread; ``cybergine serve --shopify-simulator``
mounts ``sim.app`` under ``/_shopify`` of the server itself (``sandbox``).

Served paths (``{admin}`` = ``/shops/{shop}``, the shop's admin origin):
- ``POST {admin}/admin/oauth/access_token``: token exchange and refresh (``oauth``).
- ``POST {admin}/admin/api/2026-07/graphql.json``: the Admin API subset
  (``admin_schema.graphql``, ``resolvers``), priced and throttled (``cost``), with billing
  (``billing``) and bulk operations (``bulk``); bulk files at ``/_storage/bulk/{name}``.
- ``GET {admin}/admin/apps/{client_id}``: the admin's frame around the embedded app, and
  ``GET /app-bridge.js``, a stand-in for App Bridge (``app_bridge``).
- ``{admin}/admin/charges/{client_id}/{id}/RecurringApplicationCharge/
  confirm_recurring_application_charge``: the merchant approves or declines a charge.
- ``/_control/...``: the control API (``control``): shops, seeding, product and
  collection changes (with their webhooks), uninstall, compliance webhooks, throttling,
  injected faults, session tokens and token expiry.

Webhooks (``webhooks``) are signed with the client secret and retried with backoff.
Data: ``admin_schema.graphql`` and ``catalogue_words`` (for ``generator``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cybergine.shopify.simulator.app_bridge import session_token
    from cybergine.shopify.simulator.server import DEFAULT_VERSION, ShopifySimulator
    from cybergine.shopify.simulator.webhooks import Delivery

# The stocked shop of `cybergine serve --shopify-simulator` (``sandbox``), which the demo
# organisation (``cybergine.demo``) is connected to.
DEMO_SHOP = "cybergine-demo.myshopify.com"
DEMO_SHOP_NAME = "Cybergine Demo Outdoor"

__all__ = [
    "DEFAULT_VERSION",
    "DEMO_SHOP",
    "DEMO_SHOP_NAME",
    "Delivery",
    "ShopifySimulator",
    "session_token",
]

# Loaded when first asked for: the simulator's GraphQL engine is a quarter of a second of
# a start, and `cybergine demo` and `serve` name the demo shop without running it.
_LAZY = {
    "DEFAULT_VERSION": "server",
    "ShopifySimulator": "server",
    "session_token": "app_bridge",
    "Delivery": "webhooks",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
