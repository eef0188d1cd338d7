"""Shopify's customer compliance topics (policy §8b), carried out by the platform's own
rights (``privacy.subjects``): one erasure, one export, whatever asked for them.

A Shopify customer is matched to our customers by phone number, on every channel (a
WhatsApp customer's number, E.164 as stored or as their WhatsApp id): no channel records
a customer's e-mail address (web chat visitors are anonymous), so the e-mail in the
payload finds no one. A number written without its country code matches only a number
stored the same way, never by its last digits alone, which could be someone else's.

- ``customers/redact``: each matched customer is erased (``privacy.erasure``: their
  conversations anonymised, message content, media and raw deliveries deleted).
- ``customers/data_request``: a privacy request (access, due in 30 days) is opened for
  each matched customer, and a report holding each one's export is e-mailed to the
  compliance address (``settings.shopify_compliance_email``) by a job of its own
  (``JobName.SEND_SHOPIFY_DATA_REPORT``), which the team answers Shopify from.

Each is audited with ids and counts, never the e-mail address or number asked about.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.conversations.customers import phone_digits
from cybergine.conversations.models import Customer
from cybergine.db.tenancy import TenantScope
from cybergine.job_names import JobName
from cybergine.mail.service import queue_email
from cybergine.privacy import audit, requests
from cybergine.privacy.request_models import PrivacyRequest, RequestChannel, RequestKind
from cybergine.privacy.subjects import erase_customer, export_customer, find_customers
from cybergine.queue import defer
from cybergine.shopify.models import ShopifyShop, WebhookDelivery

log = structlog.get_logger(__name__)

_SHOPIFY = audit.Actor.webhook("shopify")
# More customers than this behind one phone number is not one person.
MAX_MATCHES = 20


async def handle_customers_redact(
    session: AsyncSession, shop: ShopifyShop, topic: str, payload: dict[str, Any], webhook_id: str
) -> None:
    scope = TenantScope(session, shop.organisation_id)
    matched = await customers_named(scope, payload)
    messages = 0
    for customer in matched:
        erasure = await erase_customer(scope, None, customer.id)
        messages += erasure.messages
    await audit.record(
        session,
        action="shopify.customers_redact",
        actor=_SHOPIFY,
        organisation_id=shop.organisation_id,
        target_type="shopify_shop",
        target_id=str(shop.id),
        details={"webhook_id": webhook_id, "customers": len(matched), "messages": messages},
    )


async def handle_customers_data_request(
    session: AsyncSession, shop: ShopifyShop, topic: str, payload: dict[str, Any], webhook_id: str
) -> None:
    scope = TenantScope(session, shop.organisation_id)
    matched = await customers_named(scope, payload)
    opened = [
        await requests.open_request(
            scope,
            _SHOPIFY,
            kind=RequestKind.ACCESS,
            channel=RequestChannel.SHOPIFY,
            customer_id=customer.id,
        )
        for customer in matched
    ]
    delivery_id = await session.scalar(
        select(WebhookDelivery.id).where(
            WebhookDelivery.shop_id == shop.id, WebhookDelivery.webhook_id == webhook_id
        )
    )
    await defer(
        session,
        JobName.SEND_SHOPIFY_DATA_REPORT,
        delivery_id=str(delivery_id),
        request_ids=[str(request.id) for request in opened],
    )
    await audit.record(
        session,
        action="shopify.customers_data_request",
        actor=_SHOPIFY,
        organisation_id=shop.organisation_id,
        target_type="shopify_shop",
        target_id=str(shop.id),
        details={
            "webhook_id": webhook_id,
            "customers": len(matched),
            "privacy_requests": [str(request.id) for request in opened],
        },
    )


async def customers_named(scope: TenantScope, payload: dict[str, Any]) -> list[Customer]:
    """The customers of ``scope`` the payload's ``customer`` names, by phone number."""
    customer = payload.get("customer")
    phone = customer.get("phone") if isinstance(customer, dict) else None
    if not isinstance(phone, str) or phone_digits(phone) is None:
        return []
    found = await find_customers(scope, phone_number=phone, limit=MAX_MATCHES + 1)
    if len(found) > MAX_MATCHES:
        log.warning("shopify compliance: too many customers share a number", count=len(found))
        return []
    return [customer for customer in found if not customer.erased]


async def send_data_report(
    session: AsyncSession, delivery_id: uuid.UUID, request_ids: list[uuid.UUID], *, to: str
) -> bool:
    """E-mail the report of a ``customers/data_request`` to ``to``: what Shopify asked,
    the privacy requests opened with their due date, and each matched customer's export.
    False when the delivery is gone (its shop was erased meanwhile): nothing to report."""
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return False
    scope = TenantScope(session, delivery.organisation_id)
    shop = await session.get(ShopifyShop, delivery.shop_id)
    assert shop is not None  # the delivery cascades with its shop
    opened = [await requests.get_request(scope, request_id) for request_id in request_ids]
    exports = [
        await export_customer(scope, None, request.customer_id)
        for request in opened
        if request.customer_id is not None
    ]
    await queue_email(
        session,
        to=to,
        subject=f"Shopify customer data request from {shop.shop_domain}",
        body=report_text(shop, delivery, opened, exports),
    )
    log.info("shopify data request reported", delivery_id=str(delivery_id), customers=len(exports))
    return True


def report_text(
    shop: ShopifyShop,
    delivery: WebhookDelivery,
    opened: list[PrivacyRequest],
    exports: list[dict[str, Any]],
) -> str:
    payload = delivery.payload
    named = payload.get("customer")
    customer: dict[str, Any] = named if isinstance(named, dict) else {}
    data_request = payload.get("data_request")
    lines = [
        f"Shopify asked for the data Cybergine holds about a customer of {shop.shop_domain}",
        "(customers/data_request). Send what follows to the shop's owner, who answers the",
        "customer.",
        "",
        f"Shopify's webhook id: {delivery.webhook_id}",
        f"Shopify's data request id: {_id(data_request)}",
        f"Received: {delivery.created_at:%Y-%m-%d %H:%M} UTC",
        f"Customer named: Shopify id {_text(customer.get('id'))}, e-mail "
        f"{_text(customer.get('email'))}, phone {_text(customer.get('phone'))}",
        f"Orders named: {_text(payload.get('orders_requested'))} (Cybergine keeps no orders)",
        "",
    ]
    if not opened:
        lines += [
            "No customer of this shop's organisation has this phone number: Cybergine holds",
            "no data about them (no channel records a customer's e-mail address).",
        ]
    else:
        due = min(request.due_at for request in opened)
        lines += [
            f"Matched customers: {len(opened)} (by phone number, on every channel).",
            f"Due by: {due:%Y-%m-%d} (30 days after it was received). Tracked as privacy "
            "requests " + ", ".join(str(request.id) for request in opened) + ".",
            "",
            "Each customer's export (JSON) follows.",
        ]
        for number, export in enumerate(exports, start=1):
            lines += ["", f"--- Customer {number} ---", json.dumps(export, indent=2)]
    return "\n".join(lines) + "\n"


def _id(value: Any) -> str:
    found = value.get("id") if isinstance(value, dict) else None
    return _text(found)


def _text(value: Any) -> str:
    if value is None or value == "":
        return "none"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
