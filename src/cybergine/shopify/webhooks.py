"""Receiving Shopify's webhooks: verified, read, stored once, acknowledged.

Shopify waits five seconds for an answer and retries what it does not get, so receiving
does only what must happen before the 200: the body's HMAC under the app's secrets
(nothing is stored for a body that fails), the headers read and checked, the delivery
inserted once (``X-Shopify-Webhook-Id`` is unique per shop: a redelivery inserts
nothing) and its processing job deferred in the same transaction
(``JobName.PROCESS_SHOPIFY_WEBHOOK``, ``shopify.tasks``). What a topic does is
``shopify.webhook_handlers``.

A webhook for a shop we do not know (never installed, or erased by ``shop/redact``) is
acknowledged, since there is nothing of it to act on and Shopify would retry for two
days; a compliance topic among them is audited, so the answer to Shopify is on record.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.errors import CybergineError, InvalidInput
from cybergine.job_names import JobName
from cybergine.privacy import audit
from cybergine.queue import defer
from cybergine.settings import Settings
from cybergine.shopify.models import (
    API_VERSION_LENGTH,
    WEBHOOK_ID_LENGTH,
    WEBHOOK_TOPIC_LENGTH,
    ShopifyShop,
    WebhookDelivery,
)
from cybergine.shopify.shop_domains import shop_domain
from cybergine.shopify.signing import InvalidSignature
from cybergine.shopify.topics import APP_UNINSTALLED, COMPLIANCE_TOPICS
from cybergine.shopify.webhook_signature import WEBHOOK_HMAC_HEADER, verify_webhook

log = structlog.get_logger(__name__)

TOPIC_HEADER = "X-Shopify-Topic"
SHOP_HEADER = "X-Shopify-Shop-Domain"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
API_VERSION_HEADER = "X-Shopify-API-Version"
TRIGGERED_AT_HEADER = "X-Shopify-Triggered-At"

# Shopify's largest payloads (a product with hundreds of variants) stay well below this.
MAX_BODY_BYTES = 5 * 1024 * 1024
# The audit trail's name for Shopify as the one who asked.
SHOPIFY_ACTOR = audit.Actor.webhook("shopify")

_TOPIC = re.compile(r"[a-z0-9_]+(?:/[a-z0-9_]+)+", re.ASCII)
_WEBHOOK_ID = re.compile(r"[A-Za-z0-9._:-]+", re.ASCII)
_API_VERSION = re.compile(r"\d{4}-\d{2}|unstable", re.ASCII)
# Where a topic's payload names its shop (compared with the header).
_PAYLOAD_SHOP_FIELDS = {APP_UNINSTALLED: "myshopify_domain"} | dict.fromkeys(
    COMPLIANCE_TOPICS, "shop_domain"
)


class MalformedWebhook(CybergineError):
    type_slug = "malformed-shopify-webhook"
    title = "Malformed Shopify webhook"


class Receipt(enum.StrEnum):
    """What became of a delivery (the acknowledgement's ``status``)."""

    RECEIVED = "received"  # stored, its job deferred
    DUPLICATE = "duplicate"  # a redelivery of one stored before: nothing new
    UNKNOWN_SHOP = "ignored"  # no shop of ours: nothing to act on


@dataclass(frozen=True)
class WebhookHeaders:
    topic: str
    shop: str
    webhook_id: str
    api_version: str | None
    triggered_at: datetime | None


def webhook_secrets(settings: Settings) -> list[str]:
    """The app's client secrets, current first, then the previous one during a rotation."""
    return [
        secret.get_secret_value()
        for secret in (settings.shopify_api_secret, settings.shopify_previous_api_secret)
        if secret is not None and secret.get_secret_value()
    ]


def verify(raw_body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """InvalidSignature (401) unless Shopify signed ``raw_body``; also when no secret is
    configured, since then nothing can be verified."""
    if not secrets:
        # The operator's to fix (CYBERGINE_SHOPIFY_API_SECRET); Shopify retries meanwhile.
        log.warning("shopify.webhook.no_secret")
        raise InvalidSignature("Shopify webhooks are not configured on this platform.")
    verify_webhook(raw_body, headers.get(WEBHOOK_HMAC_HEADER), secrets)


def read_headers(headers: Mapping[str, str]) -> WebhookHeaders:
    """The delivery's headers, checked (MalformedWebhook naming the first bad one)."""
    topic = _header(headers, TOPIC_HEADER, WEBHOOK_TOPIC_LENGTH, _TOPIC)
    webhook_id = _header(headers, WEBHOOK_ID_HEADER, WEBHOOK_ID_LENGTH, _WEBHOOK_ID)
    try:
        shop = shop_domain(headers.get(SHOP_HEADER), field=SHOP_HEADER)
    except InvalidInput as error:
        raise MalformedWebhook(error.detail, field=SHOP_HEADER) from None
    version = headers.get(API_VERSION_HEADER)
    api_version = (
        version
        if version and len(version) <= API_VERSION_LENGTH and _API_VERSION.fullmatch(version)
        else None
    )
    return WebhookHeaders(topic, shop, webhook_id, api_version, _time(headers))


def read_payload(raw_body: bytes, headers: WebhookHeaders) -> dict[str, Any]:
    """The body as a JSON object; where the topic's payload names the shop, it must be
    the header's shop."""
    try:
        payload = json.loads(raw_body)
    except ValueError:
        raise MalformedWebhook("The body is not JSON.") from None
    if not isinstance(payload, dict):
        raise MalformedWebhook("The body is not a JSON object.")
    field = _PAYLOAD_SHOP_FIELDS.get(headers.topic)
    if field is not None:
        named = payload.get(field)
        if not isinstance(named, str) or named.lower() != headers.shop:
            raise MalformedWebhook(
                f"The payload's {field} is not the shop of the {SHOP_HEADER} header.",
                field=field,
            )
    return payload


async def store(session: AsyncSession, headers: WebhookHeaders, payload: dict[str, Any]) -> Receipt:
    """Store a verified delivery once and defer its processing, in ``session``'s
    transaction."""
    shop = await session.scalar(select(ShopifyShop).where(ShopifyShop.shop_domain == headers.shop))
    if shop is None:
        await _unknown_shop(session, headers)
        return Receipt.UNKNOWN_SHOP
    delivery_id = await session.scalar(
        insert(WebhookDelivery)
        .values(
            organisation_id=shop.organisation_id,
            shop_id=shop.id,
            topic=headers.topic,
            webhook_id=headers.webhook_id,
            api_version=headers.api_version,
            triggered_at=headers.triggered_at,
            payload=payload,
        )
        .on_conflict_do_nothing(index_elements=["shop_id", "webhook_id"])
        .returning(WebhookDelivery.id)
    )
    if delivery_id is None:
        log.info("shopify.webhook.duplicate", topic=headers.topic, shop=headers.shop)
        return Receipt.DUPLICATE
    await defer(session, JobName.PROCESS_SHOPIFY_WEBHOOK, delivery_id=str(delivery_id))
    return Receipt.RECEIVED


async def _unknown_shop(session: AsyncSession, headers: WebhookHeaders) -> None:
    log.info("shopify.webhook.unknown_shop", topic=headers.topic, shop=headers.shop)
    if headers.topic in COMPLIANCE_TOPICS:
        await audit.record(
            session,
            action="shopify.compliance.no_shop",
            actor=SHOPIFY_ACTOR,
            target_type="shopify_shop",
            target_id=headers.shop,
            details={"topic": headers.topic, "webhook_id": headers.webhook_id},
        )


def _header(
    headers: Mapping[str, str], name: str, max_length: int, pattern: re.Pattern[str]
) -> str:
    value = headers.get(name)
    if not value or len(value) > max_length or not pattern.fullmatch(value):
        raise MalformedWebhook(f"The {name} header is missing or malformed.", field=name)
    return value


def _time(headers: Mapping[str, str]) -> datetime | None:
    """``X-Shopify-Triggered-At`` (ISO 8601); it is informative, so a bad one is dropped."""
    value = headers.get(TRIGGERED_AT_HEADER)
    if not value or len(value) > 64:
        return None
    try:
        triggered = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return triggered if triggered.tzinfo is not None else None
