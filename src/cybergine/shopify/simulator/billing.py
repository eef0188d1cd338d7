"""The Billing API's recurring charges: ``appSubscriptionCreate`` answers a PENDING
subscription and a ``confirmationUrl`` where the merchant approves or declines it;
approving makes it ACTIVE (an active one it replaces is CANCELLED), and every change of
status sends ``app_subscriptions/update``. ``test: true`` marks a development charge, as
the platform sends in development; ``appSubscriptionCancel`` cancels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cybergine.shopify.signing import sign
from cybergine.shopify.simulator.store import Ids, Shop, Subscription, money, now
from cybergine.shopify.simulator.webhooks import WebhookSender, subscription_payload

SUBSCRIPTION_TOPIC = "app_subscriptions/update"
STATUSES = frozenset(
    {"ACTIVE", "CANCELLED", "DECLINED", "EXPIRED", "FROZEN", "PENDING", "ACCEPTED"}
)


class Billing:
    def __init__(
        self, ids: Ids, webhooks: WebhookSender, confirmation_url: Callable[[Shop, int], str]
    ) -> None:
        self._ids = ids
        self._webhooks = webhooks
        self._confirmation_url = confirmation_url

    def create(self, shop: Shop, arguments: Mapping[str, Any]) -> dict[str, Any]:
        name = str(arguments.get("name") or "").strip()
        errors = []
        if not name:
            errors.append({"field": ["name"], "message": "Name can't be blank"})
        items = arguments.get("lineItems") or []
        recurring = next(
            (
                i["plan"]["appRecurringPricingDetails"]
                for i in items
                if (i.get("plan") or {}).get("appRecurringPricingDetails")
            ),
            None,
        )
        usage = any((i.get("plan") or {}).get("appUsagePricingDetails") for i in items)
        if not items or (recurring is None and not usage):
            errors.append({"field": ["lineItems"], "message": "Line items must have a plan"})
        if errors:
            return {"appSubscription": None, "confirmationUrl": None, "userErrors": errors}
        price = recurring["price"] if recurring else None
        subscription = Subscription(
            id=self._ids.next(),
            name=name,
            status="PENDING",
            test=bool(arguments.get("test")),
            return_url=str(arguments["returnUrl"]),
            price=money(price["amount"]) if price else None,
            currency=str(price["currencyCode"]) if price else shop.currency,
            interval=str(recurring.get("interval") or "EVERY_30_DAYS") if recurring else "",
            trial_days=int(arguments.get("trialDays") or 0),
        )
        with shop.lock:
            shop.subscriptions[subscription.id] = subscription
        return {
            "appSubscription": subscription,
            "confirmationUrl": self._confirmation_url(shop, subscription.id),
            "userErrors": [],
        }

    def cancel(self, shop: Shop, number: int) -> dict[str, Any]:
        subscription = shop.subscriptions.get(number)
        if subscription is None:
            return {
                "appSubscription": None,
                "userErrors": [{"field": ["id"], "message": "Subscription not found"}],
            }
        self.set_status(shop, subscription, "CANCELLED")
        return {"appSubscription": subscription, "userErrors": []}

    def decide(self, shop: Shop, number: int, *, approve: bool) -> Subscription | None:
        """The merchant's answer on the confirmation page."""
        subscription = shop.subscriptions.get(number)
        if subscription is None or subscription.status != "PENDING":
            return None
        self.set_status(shop, subscription, "ACTIVE" if approve else "DECLINED")
        return subscription

    def set_status(self, shop: Shop, subscription: Subscription, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"status is one of {sorted(STATUSES)}")
        replaced: list[Subscription] = []
        with shop.lock:
            if status == "ACTIVE":
                replaced = [
                    s
                    for s in shop.subscriptions.values()
                    if s.status == "ACTIVE" and s.id != subscription.id
                ]
                for old in replaced:
                    old.status, old.updated_at = "CANCELLED", now()
            subscription.status, subscription.updated_at = status, now()
        for changed in [*replaced, subscription]:
            self._webhooks.send(shop, SUBSCRIPTION_TOPIC, subscription_payload(shop, changed))


def confirmation_signature(secret: str, shop: str, number: int) -> str:
    """What makes a confirmation URL unguessable (Shopify signs its own, too)."""
    return sign(f"{shop}:{number}".encode(), secret).hex()[:32]
