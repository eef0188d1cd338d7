"""The webhook topics the app subscribes to (``shopify.app.toml``), by the names Shopify
sends in ``X-Shopify-Topic``. Pure."""

from __future__ import annotations

APP_UNINSTALLED = "app/uninstalled"
# Shopify's mandatory compliance topics (``compliance_topics`` in shopify.app.toml).
CUSTOMERS_DATA_REQUEST = "customers/data_request"
CUSTOMERS_REDACT = "customers/redact"
SHOP_REDACT = "shop/redact"
COMPLIANCE_TOPICS = frozenset({CUSTOMERS_DATA_REQUEST, CUSTOMERS_REDACT, SHOP_REDACT})
