"""Billing of a Shopify shop: its plan, the plan's monthly allowance, and the subscription.

A paid plan is a recurring app subscription through Shopify's GraphQL Billing API
(``appSubscriptionCreate``; ``test: true`` outside production, ``shopify_test_charges``):
the merchant approves it on Shopify's confirmation page, reached top-level from the
embedded admin, and Shopify reports every change of its status through the
``app_subscriptions/update`` webhook (ACTIVE, CANCELLED, DECLINED, EXPIRED, FROZEN,
PENDING), which keeps the shop's row in step. Only the plan's name and the status are
stored, with Shopify's id of the subscription to match its webhooks (privacy policy §8b).
A shop is on its paid plan while that subscription is ACTIVE, and on the free plan
otherwise.

The allowance: each plan answers so many new conversations a calendar month (UTC). A
conversation begun beyond it is not answered by the assistant: it is handed to the shop's
team, who find it in the inbox with the reason, and the embedded admin and the dashboard
show the count and the limit. That is the least harmful way to stop: the customer's
message is kept and reaches people rather than being dropped or refused, conversations
already under way keep their assistant, and nothing a customer wrote is lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.conversations.models import Conversation, ConversationState
from cybergine.conversations.service import hand_off
from cybergine.db.engine import Database
from cybergine.errors import InvalidInput
from cybergine.privacy import audit
from cybergine.settings import Settings
from cybergine.shopify import tokens
from cybergine.shopify.admin_api import AccessRevoked, AdminApiError, AdminClient, UserErrors
from cybergine.shopify.models import ShopifyShop
from cybergine.shopify.plans import FREE, PLANS, Plan
from cybergine.shopify.sync_status import shop_of

log = structlog.get_logger(__name__)

APP_SUBSCRIPTIONS_UPDATE = "app_subscriptions/update"
ACTIVE = "ACTIVE"
PENDING = "PENDING"
CANCELLED = "CANCELLED"
SUBSCRIPTION_STATUSES = frozenset({ACTIVE, CANCELLED, "DECLINED", "EXPIRED", "FROZEN", PENDING})
APP_SUBSCRIPTION_CREATE = """
mutation AppSubscriptionCreate(
  $name: String!
  $lineItems: [AppSubscriptionLineItemInput!]!
  $returnUrl: URL!
  $test: Boolean
  $trialDays: Int
) {
  appSubscriptionCreate(
    name: $name
    lineItems: $lineItems
    returnUrl: $returnUrl
    test: $test
    trialDays: $trialDays
  ) {
    appSubscription { id status }
    confirmationUrl
    userErrors { field message }
  }
}
"""
_SUBSCRIPTION_ID_LENGTH = 255


def plan_named(name: str | None) -> Plan:
    for plan in PLANS:
        if plan.name == name:
            return plan
    raise InvalidInput(
        f"No plan is called that; choose one of {', '.join(p.name for p in PLANS)}.",
        field="plan",
    )


def current_plan(shop: ShopifyShop) -> Plan:
    """The plan the shop has now: its subscription's while ACTIVE, the free one else."""
    if shop.subscription_status != ACTIVE:
        return FREE
    try:
        return plan_named(shop.plan_name)
    except InvalidInput:
        # A plan renamed or withdrawn since: honoured as the free plan's limits would not
        # be; the largest allowance keeps the paying merchant whole.
        return max(PLANS, key=lambda plan: plan.conversations_per_month)


def test_charges(settings: Settings) -> bool:
    """Shopify requires an https application URL, so a platform not behind HTTPS is a
    development or demo one, whose charges are tests."""
    if settings.shopify_test_charges is not None:
        return settings.shopify_test_charges
    return not settings.behind_https


def return_url(settings: Settings, shop: ShopifyShop) -> str:
    """Where Shopify sends the merchant after the confirmation page: the app, inside
    the shop's admin."""
    admin = settings.shopify_admin_url.format(shop=shop.shop_domain)
    return f"{admin}/admin/apps/{settings.shopify_api_key}"


async def subscribe(
    database: Database, settings: Settings, shop: ShopifyShop, plan_name: str
) -> str:
    """Asks Shopify for a subscription to the plan; the confirmation URL the merchant
    approves it at (to open top-level: Shopify's page cannot be framed)."""
    plan = plan_named(plan_name)
    if plan.free:
        raise InvalidInput(
            "The free plan needs no subscription: cancelling the paid plan in the Shopify "
            "admin (Settings → Apps) returns the shop to it.",
            field="plan",
        )
    variables: dict[str, Any] = {
        "name": plan.name,
        "returnUrl": return_url(settings, shop),
        "test": test_charges(settings),
        "trialDays": plan.trial_days or None,
        "lineItems": [
            {
                "plan": {
                    "appRecurringPricingDetails": {
                        "price": {"amount": str(plan.price), "currencyCode": plan.currency},
                        "interval": plan.interval,
                    }
                }
            }
        ],
    }
    token = await tokens.access_token(database, shop, settings)
    try:
        try:
            created = await _create(settings, shop, token, variables)
        except AccessRevoked:
            # The token ended before its time: refreshed (once, for everyone), then again.
            token = await tokens.access_token(database, shop, settings, rejected=token)
            created = await _create(settings, shop, token, variables)
    except UserErrors as error:
        raise InvalidInput(error.message, field="plan") from None
    except AdminApiError as error:
        raise tokens.ShopifyUnavailable(
            f"Shopify did not create the subscription: {error.message}"
        ) from None
    confirmation = created.get("confirmationUrl")
    subscription = created.get("appSubscription") or {}
    if not isinstance(confirmation, str) or not confirmation.startswith(("https://", "http://")):
        raise tokens.ShopifyUnavailable(
            "Shopify answered no confirmation page for the subscription."
        )
    async with database.transaction() as session:
        row = await _locked(session, shop.id)
        # A shop on an active plan keeps it until Shopify says the new one is active.
        if row is not None and row.subscription_status != ACTIVE:
            row.plan_name = plan.name
            row.subscription_status = _status(subscription.get("status")) or PENDING
            row.subscription_id = _subscription_id(subscription.get("id"))
        await audit.record(
            session,
            action="shopify.subscription.requested",
            actor=audit.Actor.system("shopify"),
            organisation_id=shop.organisation_id,
            target_type="shopify_shop",
            target_id=str(shop.id),
            details={"plan": plan.name, "test": variables["test"]},
        )
    return confirmation


async def _create(
    settings: Settings, shop: ShopifyShop, token: str, variables: Mapping[str, Any]
) -> Mapping[str, Any]:
    client = AdminClient(settings, shop.shop_domain, token)
    try:
        return await client.mutate(APP_SUBSCRIPTION_CREATE, "appSubscriptionCreate", variables)
    finally:
        await client.aclose()


async def handle_app_subscription_update(
    session: AsyncSession,
    shop: ShopifyShop,
    topic: str,
    payload: Mapping[str, Any],
    webhook_id: str,
) -> None:
    """``app_subscriptions/update``: the subscription's new status. A subscription that
    becomes ACTIVE is the shop's plan; another subscription's end (the one an upgrade
    replaced, Shopify cancels it) leaves the active one alone."""
    subscription = payload.get("app_subscription")
    if not isinstance(subscription, Mapping):
        log.warning("app subscription webhook without app_subscription", webhook_id=webhook_id)
        return
    status = _status(subscription.get("status"))
    subscription_id = _subscription_id(subscription.get("admin_graphql_api_id"))
    name = subscription.get("name")
    if status is None or subscription_id is None or not isinstance(name, str):
        log.warning("app subscription webhook not understood", webhook_id=webhook_id)
        return
    row = await _locked(session, shop.id)
    if row is None:
        return
    mine = subscription_id == row.subscription_id
    if status == ACTIVE or mine or row.subscription_status != ACTIVE:
        row.subscription_id = subscription_id
        row.plan_name = name[:100]
        row.subscription_status = status
    else:
        log.info("earlier subscription's status ignored", shop_id=str(row.id), status=status)
        return
    await audit.record(
        session,
        action="shopify.subscription.updated",
        actor=audit.Actor.webhook("shopify"),
        organisation_id=row.organisation_id,
        target_type="shopify_shop",
        target_id=str(row.id),
        details={"plan": row.plan_name, "status": status},
    )


# --- the monthly allowance --------------------------------------------------------


@dataclass(frozen=True)
class Allowance:
    plan: Plan
    used: int  # conversations begun this month
    since: datetime

    @property
    def limit(self) -> int:
        return self.plan.conversations_per_month

    @property
    def reached(self) -> bool:
        return self.used >= self.limit


def month_start(now: datetime | None = None) -> datetime:
    at = now or datetime.now(UTC)
    return at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def allowance(
    session: AsyncSession, shop: ShopifyShop, *, now: datetime | None = None
) -> Allowance:
    since = month_start(now)
    used = await session.scalar(
        select(func.count())
        .select_from(Conversation)
        .where(
            Conversation.organisation_id == shop.organisation_id,
            Conversation.created_at >= since,
        )
    )
    return Allowance(plan=current_plan(shop), used=int(used or 0), since=since)


async def beyond_allowance(
    session: AsyncSession, organisation_id: uuid.UUID, conversation_id: uuid.UUID
) -> bool:
    """Whether the conversation began beyond its shop's monthly allowance (an
    organisation without a Shopify shop has none). A conversation's place in its month
    never changes, so one the assistant answered stays answered."""
    shop = await shop_of(session, organisation_id)
    if shop is None:
        return False
    conversation = await session.scalar(
        select(Conversation).where(
            Conversation.organisation_id == organisation_id, Conversation.id == conversation_id
        )
    )
    if conversation is None:
        return False
    since = month_start(conversation.created_at)
    allowance = current_plan(shop).conversations_per_month
    # Counted no further than one past the allowance: each reply reads at most that many
    # index entries, however busy the month.
    earlier = (
        select(Conversation.id)
        .where(
            Conversation.organisation_id == organisation_id,
            Conversation.created_at >= since,
            tuple_(Conversation.created_at, Conversation.id)
            <= tuple_(conversation.created_at, conversation.id),
        )
        .limit(allowance + 1)
        .subquery()
    )
    place = await session.scalar(select(func.count()).select_from(earlier))
    return int(place or 0) > allowance


def limit_reason(plan: Plan) -> str:
    return (
        f"The {plan.name} plan's assistant answers {plan.conversations_per_month} new "
        "conversations a month, and this one began beyond them, so it was left to your "
        "team. A larger plan, chosen in the Cybergine app in your Shopify admin, lets the "
        "assistant answer more."
    )


async def hand_to_team(
    session: AsyncSession,
    *,
    organisation_id: uuid.UUID,
    conversation_id: uuid.UUID,
    public_url: str,
) -> bool:
    """Hands a conversation begun beyond the allowance to the team, once."""
    conversation = await session.scalar(
        select(Conversation)
        .where(Conversation.organisation_id == organisation_id, Conversation.id == conversation_id)
        .with_for_update()
    )
    if conversation is None or conversation.state != ConversationState.BOT:
        return False
    shop = await shop_of(session, organisation_id)
    plan = current_plan(shop) if shop is not None else FREE
    await hand_off(
        session,
        conversation,
        reason=limit_reason(plan),
        human_review=False,
        public_url=public_url,
    )
    return True


async def _locked(session: AsyncSession, shop_id: uuid.UUID) -> ShopifyShop | None:
    return await session.scalar(
        select(ShopifyShop)
        .where(ShopifyShop.id == shop_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _status(value: object) -> str | None:
    return value if isinstance(value, str) and value in SUBSCRIPTION_STATUSES else None


def _subscription_id(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= _SUBSCRIPTION_ID_LENGTH:
        return value
    return None
