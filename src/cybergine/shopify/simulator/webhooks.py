"""Webhooks as Shopify sends them: a JSON body POSTed to the app's webhook URL with

- ``X-Shopify-Topic``, ``X-Shopify-Shop-Domain``, ``X-Shopify-API-Version``;
- ``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body with the client secret;
- ``X-Shopify-Webhook-Id`` (the same on every retry of one delivery: the idempotency
  key), ``X-Shopify-Event-Id`` (the event behind it) and ``X-Shopify-Triggered-At``;

retried on a non-2xx answer, a timeout or a refused connection, with exponential backoff,
a bounded number of times (Shopify: 8 times over 4 hours; here few and fast, set per
simulator). Deliveries run on a small thread pool, so neither a request to the simulator
nor a bulk operation waits for the app; ``wait_idle`` lets a test wait for them all.

Payload shapes: product and collection topics carry the REST resource (``store``),
``app/uninstalled`` the shop, the compliance topics the shapes of Shopify's examples
(``tests/fixtures/shopify/webhooks``).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import httpx

from cybergine.shopify.simulator.store import BulkOperation, Shop, Subscription, gid, iso
from cybergine.shopify.webhook_signature import WEBHOOK_HMAC_HEADER, webhook_hmac
from cybergine.tls import client_context

DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
TIMEOUT_SECONDS = 5.0  # Shopify: the app has five seconds to answer


@dataclass(frozen=True)
class Delivery:
    """One webhook and how its delivery ended (``status`` None: no HTTP answer)."""

    topic: str
    shop: str
    webhook_id: str
    event_id: str
    body: bytes
    headers: Mapping[str, str]
    status: int | None
    attempts: int
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def payload(self) -> Any:
        return json.loads(self.body)


class WebhookSender:
    """Signs and delivers webhooks to ``url`` (None: webhooks are recorded, not sent)."""

    def __init__(self, secret: str, *, url: str | None = None, api_version: str) -> None:
        self.secret = secret
        self.url = url
        self.api_version = api_version
        self.attempts = DEFAULT_ATTEMPTS
        self.backoff_seconds = DEFAULT_BACKOFF_SECONDS
        self.timeout_seconds = TIMEOUT_SECONDS
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="shopify-webhook")
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()
        self._deliveries: list[Delivery] = []
        self._client = httpx.Client(timeout=TIMEOUT_SECONDS, verify=client_context())

    def send(self, shop: Shop, topic: str, payload: Mapping[str, Any]) -> None:
        """Queues a delivery of ``payload`` under ``topic`` for ``shop``."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Shopify-Captain-Hook",
            "X-Shopify-Topic": topic,
            WEBHOOK_HMAC_HEADER: webhook_hmac(body, self.secret),
            "X-Shopify-Shop-Domain": shop.domain,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": stamp,
        }
        future = self._pool.submit(self._deliver, shop.domain, topic, body, headers)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _deliver(self, shop: str, topic: str, body: bytes, headers: dict[str, str]) -> None:
        url = self.url
        status: int | None = None
        error: str | None = "no webhook URL is set"
        attempts = 0
        while url and attempts < max(self.attempts, 1):
            if attempts:
                time.sleep(min(self.backoff_seconds * 2 ** (attempts - 1), BACKOFF_CAP_SECONDS))
            attempts += 1
            try:
                answer = self._client.post(
                    url, content=body, headers=headers, timeout=self.timeout_seconds
                )
            except httpx.HTTPError as failure:
                status, error = None, f"{type(failure).__name__}: {failure}"
                continue
            status, error = answer.status_code, None
            if 200 <= status < 300:
                break
            error = answer.text[:200]
        record = Delivery(
            topic,
            shop,
            headers["X-Shopify-Webhook-Id"],
            headers["X-Shopify-Event-Id"],
            body,
            headers,
            status,
            attempts,
            error,
        )
        with self._lock:
            self._deliveries.append(record)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Returns once every queued delivery has ended (TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = set(self._pending)
            if not pending:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("webhook deliveries still running")
            wait(pending, timeout=remaining)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()


# -- payloads ------------------------------------------------------------------------------


def shop_payload(shop: Shop) -> dict[str, Any]:
    """The shop resource: the body of app/uninstalled."""
    return {
        "id": shop.shop_id,
        "name": shop.name,
        "email": shop.email,
        "domain": shop.domain,
        "province": None,
        "country": "DE",
        "address1": None,
        "zip": None,
        "city": None,
        "source": None,
        "phone": None,
        "latitude": None,
        "longitude": None,
        "primary_locale": "en",
        "address2": None,
        "created_at": None,
        "updated_at": None,
        "country_code": "DE",
        "country_name": "Germany",
        "currency": shop.currency,
        "customer_email": shop.email,
        "timezone": "(GMT+01:00) Europe/Berlin",
        "iana_timezone": "Europe/Berlin",
        "shop_owner": shop.name,
        "money_format": "{{amount}}",
        "money_with_currency_format": f"{{{{amount}}}} {shop.currency}",
        "weight_unit": "kg",
        "province_code": None,
        "taxes_included": True,
        "tax_shipping": None,
        "county_taxes": True,
        "plan_display_name": "Development",
        "plan_name": "partner_test",
        "has_discounts": False,
        "has_gift_cards": False,
        "myshopify_domain": shop.domain,
        "google_apps_domain": None,
        "google_apps_login_enabled": None,
        "money_in_emails_format": "{{amount}}",
        "money_with_currency_in_emails_format": f"{{{{amount}}}} {shop.currency}",
        "eligible_for_payments": True,
        "requires_extra_payments_agreement": False,
        "password_enabled": False,
        "has_storefront": True,
        "eligible_for_card_reader_giveaway": False,
        "finances": True,
        "primary_location_id": None,
        "checkout_api_supported": True,
        "multi_location_enabled": True,
        "setup_required": False,
        "force_ssl": True,
        "pre_launch_enabled": False,
        "enabled_presentment_currencies": [shop.currency],
    }


def compliance_payload(shop: Shop, topic: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """customers/data_request, customers/redact or shop/redact, in Shopify's shapes."""
    base: dict[str, Any] = {"shop_id": shop.shop_id, "shop_domain": shop.domain}
    customer = {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"}
    if topic == "customers/data_request":
        base.update(
            orders_requested=[],
            customer=customer,
            data_request={"id": int(time.time())},
        )
    elif topic == "customers/redact":
        base.update(customer=customer, orders_to_redact=[])
    base.update(overrides)
    return base


def subscription_payload(shop: Shop, subscription: Subscription) -> dict[str, Any]:
    """The body of app_subscriptions/update."""
    return {
        "app_subscription": {
            "admin_graphql_api_id": gid("AppSubscription", subscription.id),
            "name": subscription.name,
            "status": subscription.status,
            "admin_graphql_api_shop_id": gid("Shop", shop.shop_id),
            "created_at": iso(subscription.created_at),
            "updated_at": iso(subscription.updated_at),
            "currency": subscription.currency,
            "capped_amount": None,
            "price": subscription.price,
            "interval": subscription.interval.lower(),
            "plan_handle": None,
        }
    }


def bulk_finish_payload(operation: BulkOperation) -> dict[str, Any]:
    """The body of bulk_operations/finish (statuses in lower case, as Shopify sends them)."""
    return {
        "admin_graphql_api_id": gid("BulkOperation", operation.id),
        "completed_at": iso(operation.completed_at),
        "created_at": iso(operation.created_at),
        "error_code": operation.error_code.lower() if operation.error_code else None,
        "status": operation.status.lower(),
        "type": operation.type.lower(),
    }
