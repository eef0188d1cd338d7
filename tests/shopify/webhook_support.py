"""Shops, signed deliveries and a worker run for the webhook tests."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from cybergine.accounts.models import Organisation
from cybergine.db.engine import Database
from cybergine.settings import Settings
from cybergine.shopify.models import ShopifyShop, ShopStatus, WebhookDelivery
from cybergine.shopify.webhook_signature import webhook_hmac
from tests.shopify.signed_fixtures import FIXTURES
from tests.support.factories import make_organisation
from tests.support.server import TLS

SECRET = "shpss_webhooks_current_0123456789abcdef"
PREVIOUS_SECRET = "shpss_webhooks_previous_0123456789abcd"
API_VERSION = "2026-07"


@dataclass(frozen=True)
class ConnectedShop:
    organisation: Organisation
    shop: ShopifyShop
    owner_email: str

    @property
    def domain(self) -> str:
        return self.shop.shop_domain


async def connect_shop(database: Database, domain: str | None = None) -> ConnectedShop:
    """An organisation with an installed shop holding (fake) encrypted tokens."""
    domain = domain or f"shop-{uuid.uuid4().hex[:10]}.myshopify.com"
    organisation, owner = await make_organisation(database, name=f"Shop {domain}")
    async with database.transaction() as session:
        shop = ShopifyShop(
            organisation_id=organisation.id,
            shop_domain=domain,
            status=ShopStatus.INSTALLED,
            scopes="read_products,read_content,read_legal_policies",
            access_token="shpat_access",
            refresh_token="shprt_refresh",
            installed_at=datetime.now(UTC),
        )
        session.add(shop)
        await session.flush()
    return ConnectedShop(organisation, shop, owner.email)


def fixture_payload(name: str, shop: str) -> bytes:
    """A real payload from tests/fixtures/shopify/webhooks, for ``shop``."""
    text = (FIXTURES / "webhooks" / name).read_text("utf-8")
    data = json.loads(text.replace("{shop}.myshopify.com", shop))
    if "myshopify_domain" in data:
        data["myshopify_domain"] = shop
    return json.dumps(data).encode()


def headers_for(
    body: bytes,
    *,
    topic: str,
    shop: str,
    webhook_id: str | None = None,
    secret: str = SECRET,
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": webhook_hmac(body, secret),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-API-Version": API_VERSION,
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
    }


def deliver(
    base_url: str,
    body: bytes,
    *,
    topic: str,
    shop: str,
    webhook_id: str | None = None,
    secret: str = SECRET,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = headers_for(body, topic=topic, shop=shop, webhook_id=webhook_id, secret=secret)
    sent.update(headers or {})
    return httpx.post(
        f"{base_url}/webhooks/shopify", content=body, headers=sent, timeout=10, verify=TLS
    )


async def deliveries(database: Database, shop_id: uuid.UUID | None = None) -> list[WebhookDelivery]:
    async with database.transaction() as session:
        statement = select(WebhookDelivery).order_by(WebhookDelivery.id)
        if shop_id is not None:
            statement = statement.where(WebhookDelivery.shop_id == shop_id)
        return list((await session.execute(statement)).scalars())


async def delivery_count(database: Database) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)


def shopify_settings(settings: Settings, **more: Any) -> Settings:
    from pydantic import SecretStr

    return settings.model_copy(
        update={
            "shopify_api_key": "cybergine-client-id",
            "shopify_api_secret": SecretStr(SECRET),
            "shopify_previous_api_secret": SecretStr(PREVIOUS_SECRET),
            "shopify_compliance_email": "compliance@example.test",
            **more,
        }
    )
