"""``shop/redact``: everything of a shop erased for good (policy §8b), 48 hours after
the app was uninstalled.

The shop's organisation is erased at once by the one organisation erasure
(``accounts.service.organisations``): every tenant table cascades from it (catalogue,
knowledge and its vectors, conversations, messages, customers, analytics, search rows,
assistants with their widget configuration, the shop with its tokens, its webhook
deliveries). The jobs that name the shop or the organisation go too, and the emptied
tables are vacuumed (``privacy.erasure.defer_vacuum``). Its people who belong to no other
organisation (the shop owner's account the install made) are erased with it by the one
account erasure (``accounts.service.user_erasure``), rather than 30 days later as an
account left without an organisation would be; people of other organisations keep their
accounts. The audit trail keeps that it happened, with ids and counts only.

A shop that installed the app again is not erased: Shopify sends ``shop/redact`` only
for a shop that stayed uninstalled, so one that arrives for an installed shop is stale.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from cybergine.accounts.models import Membership, User
from cybergine.accounts.service import organisations
from cybergine.accounts.service.user_erasure import erase_user
from cybergine.privacy import audit
from cybergine.privacy.erasure import defer_vacuum
from cybergine.queue import forget_jobs_naming
from cybergine.shopify.models import ShopifyShop, ShopStatus

log = structlog.get_logger(__name__)

_SHOPIFY = audit.Actor.webhook("shopify")
SHOP_ERASED = "their Shopify shop's data was erased (shop/redact)"


async def handle_shop_redact(
    session: AsyncSession, shop: ShopifyShop, topic: str, payload: dict[str, Any], webhook_id: str
) -> None:
    if shop.status is ShopStatus.INSTALLED:
        await audit.record(
            session,
            action="shopify.shop.redact_skipped",
            actor=_SHOPIFY,
            organisation_id=shop.organisation_id,
            target_type="shopify_shop",
            target_id=str(shop.id),
            details={"reason": "installed", "webhook_id": webhook_id},
        )
        log.warning("shop/redact for an installed shop ignored", shop_id=str(shop.id))
        return
    await erase_shop(session, shop)


async def erase_shop(session: AsyncSession, shop: ShopifyShop) -> None:
    """Erase ``shop``'s organisation and everything it owns, in ``session``'s
    transaction."""
    shop_id, organisation_id = shop.id, shop.organisation_id
    names = [str(shop_id), str(organisation_id), shop.shop_domain]
    jobs = await forget_jobs_naming(session, names)
    people = await _only_here(session, organisation_id)
    session.expunge(shop)  # its row goes with the organisation
    await organisations.erase_at_once(session, organisation_id, actor=_SHOPIFY)
    for user_id in people:
        await erase_user(session, user_id, reason=SHOP_ERASED)
    await audit.record(
        session,
        action="shopify.shop.erased",
        actor=_SHOPIFY,
        organisation_id=organisation_id,
        target_type="shopify_shop",
        target_id=str(shop_id),
        details={"jobs_removed": jobs, "accounts_erased": len(people)},
    )
    await defer_vacuum(session)
    log.info("shopify shop erased", shop_id=str(shop_id), jobs_removed=jobs)


async def _only_here(session: AsyncSession, organisation_id: uuid.UUID) -> list[uuid.UUID]:
    """The members of the organisation who belong to no other."""
    other = aliased(Membership)
    elsewhere = (
        select(other.id)
        .where(other.user_id == User.id, other.organisation_id != organisation_id)
        .exists()
    )
    return list(
        await session.scalars(
            select(User.id)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.organisation_id == organisation_id, ~elsewhere)
            .order_by(User.id)
        )
    )
