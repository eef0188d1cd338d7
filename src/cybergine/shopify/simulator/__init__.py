"""A local Shopify for tests, benchmarks and the demo: the admin endpoints the platform
calls, App Bridge's session tokens, signed webhooks and a seedable store.

Written from shopify.dev's documented formats, so the platform's own client code talks to
it through ``settings.shopify_admin_url`` exactly as it talks to Shopify::

    with ShopifySimulator(client_id="id", client_secret="secret", webhook_url=...) as sim:
        settings.shopify_admin_url = sim.admin_url      # http://127.0.0.1:P/shops/{shop}
        token = sim.session_token("demo.myshopify.com")  # what App Bridge hands the app

Served paths (``{admin}`` = ``/shops/{shop}``):
- ``POST {admin}/admin/oauth/access_token``: token exchange and refresh (``oauth``).
- ``GET {admin}/admin/apps/{client_id}``: the admin's frame around the embedded app, and
  ``GET /app-bridge.js``, a stand-in for App Bridge (``app_bridge``).
- ``/_control/...``: the control API for tests and the demo (shops, session tokens,
  token expiry).

Layout: ``server`` (the simulator and its routes), ``store`` (what a shop holds),
``oauth`` (tokens), ``app_bridge`` (session tokens, the admin frame, the stand-in script).
"""

from __future__ import annotations

from cybergine.shopify.simulator.app_bridge import session_token
from cybergine.shopify.simulator.server import DEFAULT_VERSION, ShopifySimulator

__all__ = ["DEFAULT_VERSION", "ShopifySimulator", "session_token"]
