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
from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin, value_enum
from cybergine.privacy.crypto import EncryptedString
from cybergine.privacy.retention import Retention

# Shopify's own limit for a myshopify.com host name is far below this.
SHOP_DOMAIN_LENGTH = 255


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
