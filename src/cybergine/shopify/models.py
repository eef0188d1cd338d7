"""A Shopify shop connected to an organisation: one row per shop, for the life of the install.

The shop domain is the key every Shopify surface arrives with (session tokens, webhooks,
the storefront embed), so it is unique platform-wide and maps a shop to exactly one
organisation. The offline access token and its refresh token are kept encrypted; Shopify
issues them expiring, and the refresh rotates both (``shopify.tokens``).

Uninstalling is a soft delete (``status`` = uninstalled, tokens destroyed, the widget off,
every surface hides the shop's data); Shopify's ``shop/redact`` 48 hours later deletes
everything of the shop, this row included.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin, value_enum
from cybergine.privacy.crypto import EncryptedString
from cybergine.privacy.retention import Retention

# Shopify's own limit for a myshopify.com host name is far below this.
SHOP_DOMAIN_LENGTH = 255
# Webhook headers: topics are short ("customers/data_request"), webhook ids are UUIDs,
# API versions "2026-07"; longer values are refused at the edge.
WEBHOOK_TOPIC_LENGTH = 100
WEBHOOK_ID_LENGTH = 100
API_VERSION_LENGTH = 32
WEBHOOK_ERROR_LENGTH = 500


class ShopStatus(enum.StrEnum):
    INSTALLED = "installed"
    UNINSTALLED = "uninstalled"


class ShopifyShop(TenantMixin, Base):
    __tablename__ = "shopify_shops"
    __retention__ = Retention.ACCOUNT

    shop_domain: Mapped[str] = mapped_column(String(SHOP_DOMAIN_LENGTH), unique=True)
    status: Mapped[ShopStatus] = mapped_column(
        value_enum(ShopStatus, "shopify_shop_status"), default=ShopStatus.INSTALLED
    )
    # The scopes Shopify granted, as the token exchange answered them (comma-separated).
    scopes: Mapped[str] = mapped_column(Text, default="")
    access_token: Mapped[str | None] = mapped_column(EncryptedString, default=None)
    access_token_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    refresh_token: Mapped[str | None] = mapped_column(EncryptedString, default=None)
    refresh_token_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    installed_at: Mapped[datetime | None] = mapped_column(default=None)
    uninstalled_at: Mapped[datetime | None] = mapped_column(default=None)
    # Billing (privacy policy §8b: only the plan's name and the subscription's status).
    plan_name: Mapped[str | None] = mapped_column(String(100), default=None)
    subscription_status: Mapped[str | None] = mapped_column(String(32), default=None)
    subscription_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # Whether the storefront chat embed is on in the live theme, as App Bridge reported it
    # to the embedded admin page (``shopify.embedded.EmbedState``) and when.
    embed_state: Mapped[str | None] = mapped_column(String(16), default=None)
    embed_checked_at: Mapped[datetime | None] = mapped_column(default=None)


class DeliveryStatus(enum.StrEnum):
    RECEIVED = "received"  # stored and acknowledged; its job has not finished yet
    PROCESSED = "processed"
    IGNORED = "ignored"  # a topic nothing handles, or a shop no longer installed
    FAILED = "failed"  # its handler failed on every attempt


class WebhookDelivery(TenantMixin, Base):
    """One webhook Shopify delivered for a known shop, as it arrived, until processed.

    ``X-Shopify-Webhook-Id`` is unique per shop: a redelivery finds its row and stores
    nothing new. The payload of a compliance topic names a customer (e-mail, phone), so
    it is personal data found by the customer's export and erasure
    (``privacy.holdings``); every row is pruned a short while after it was processed
    (``shopify.tasks.prune_webhook_deliveries``) and goes with its shop on
    ``shop/redact``.
    """

    __tablename__ = "shopify_webhook_deliveries"
    __retention__ = Retention.OPERATIONAL
    __table_args__ = (
        UniqueConstraint("shop_id", "webhook_id"),
        # Pruning by age.
        Index(None, "created_at"),
    )

    shop_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shopify_shops.id", ondelete="CASCADE"), index=True
    )
    topic: Mapped[str] = mapped_column(String(WEBHOOK_TOPIC_LENGTH))
    webhook_id: Mapped[str] = mapped_column(String(WEBHOOK_ID_LENGTH))
    api_version: Mapped[str | None] = mapped_column(String(API_VERSION_LENGTH), default=None)
    triggered_at: Mapped[datetime | None] = mapped_column(default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[DeliveryStatus] = mapped_column(
        value_enum(DeliveryStatus, "shopify_webhook_status"), default=DeliveryStatus.RECEIVED
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(WEBHOOK_ERROR_LENGTH), default=None)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
