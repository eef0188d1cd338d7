"""``app/uninstalled``: a soft delete at once (policy §8b), undone by installing again.

The shop is marked uninstalled and its tokens destroyed (Shopify revoked them anyway);
its organisation is hidden from every surface (``accounts.grace``: sign-in and the API
answer 403, the widget and WhatsApp take no new messages); the shop's jobs not started
yet (sync) are cancelled. Nothing is deleted: Shopify's ``shop/redact`` does that 48
hours later (``shopify.shop_redact``), unless the merchant installs the app again first,
which calls ``restore_shop``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.resumed_work import resume_background_work
from cybergine.accounts.service import organisations
from cybergine.privacy import audit
from cybergine.queue import cancel_waiting_jobs_naming
from cybergine.shopify.models import ShopifyShop, ShopStatus

log = structlog.get_logger(__name__)

# Where this package's jobs are named (``cybergine.job_names``: "shopify:…").
SHOPIFY_JOBS = "shopify"
_SHOPIFY = audit.Actor.webhook("shopify")


async def handle_app_uninstalled(
    session: AsyncSession, shop: ShopifyShop, topic: str, payload: dict[str, Any], webhook_id: str
) -> None:
    await uninstall_shop(session, shop)


async def uninstall_shop(session: AsyncSession, shop: ShopifyShop) -> None:
    """Soft-delete ``shop``. Idempotent: a second run finds nothing more to do."""
    first_time = shop.status is not ShopStatus.UNINSTALLED
    shop.status = ShopStatus.UNINSTALLED
    if first_time or shop.uninstalled_at is None:
        shop.uninstalled_at = datetime.now(UTC)
    shop.access_token = None
    shop.access_token_expires_at = None
    shop.refresh_token = None
    shop.refresh_token_expires_at = None
    await session.flush()
    await organisations.hide_for_uninstalled_shop(session, shop.organisation_id)
    cancelled = await cancel_waiting_jobs_naming(session, SHOPIFY_JOBS, _names_of(shop))
    if first_time:
        await audit.record(
            session,
            action="shopify.shop.uninstalled",
            actor=_SHOPIFY,
            organisation_id=shop.organisation_id,
            target_type="shopify_shop",
            target_id=str(shop.id),
            details={"jobs_cancelled": cancelled},
        )
    log.info("shopify shop uninstalled", shop_id=str(shop.id), jobs_cancelled=cancelled)


async def restore_shop(session: AsyncSession, shop: ShopifyShop) -> None:
    """The shop installed the app again before ``shop/redact``: the shop is installed
    and its organisation shown again, as it was. The caller (the install) stores the new
    tokens and audits the reinstall."""
    shop.status = ShopStatus.INSTALLED
    shop.uninstalled_at = None
    await session.flush()
    await organisations.show_reinstalled_shop(session, shop.organisation_id)
    await resume_background_work(session, shop.organisation_id)


def _names_of(shop: ShopifyShop) -> list[str]:
    """What a job of the shop may name it by."""
    return [str(shop.id), str(shop.organisation_id), shop.shop_domain]
