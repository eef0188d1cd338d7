"""The app's plans, as Shopify bills them (GraphQL Billing API, ``appSubscriptionCreate``).

Data only: ``shopify.billing`` holds the rules. A shop without an active subscription is on
the free plan. ``conversations_per_month`` counts the new conversations the assistant
answers in a calendar month (UTC); beyond it, new conversations go to the shop's team.
``interval`` is Shopify's ``AppPricingInterval``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Plan:
    name: str
    price: Decimal
    currency: str
    interval: str
    conversations_per_month: int
    trial_days: int = 0

    @property
    def free(self) -> bool:
        return self.price == 0


FREE = Plan("Free", Decimal("0"), "USD", "EVERY_30_DAYS", conversations_per_month=50)
STARTER = Plan("Starter", Decimal("19.00"), "USD", "EVERY_30_DAYS", 1_000, trial_days=14)
PLANS: tuple[Plan, ...] = (
    FREE,
    STARTER,
    Plan("Growth", Decimal("79.00"), "USD", "EVERY_30_DAYS", 10_000, trial_days=14),
)
