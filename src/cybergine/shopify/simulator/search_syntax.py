"""Shopify's search syntax for a connection's ``query`` argument, the part a sync uses:
``updated_at:>'…'``, ``status:…``, ``handle:…``, ``title:…`` and bare words (in the title)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from cybergine.shopify.simulator.store import Product, iso

_FILTER = re.compile(r"(\w+):(>=|<=|>|<)?'?\"?([^'\"\s]+)'?\"?")


@dataclass(frozen=True)
class Term:
    """One term of Shopify's search syntax: ``name:value``, ``name:>value`` or a word."""

    name: str
    operator: str
    value: str

    def matches(self, product: Product) -> bool:
        if self.name in ("updated_at", "created_at"):
            moment = iso(getattr(product, self.name)) or ""
            comparisons = {
                ">": moment > self.value,
                ">=": moment >= self.value,
                "<": moment < self.value,
                "<=": moment <= self.value,
            }
            return comparisons.get(self.operator, moment.startswith(self.value))
        if self.name == "status":
            return product.status in {v.upper() for v in self.value.split(",")}
        if self.name == "handle":
            return product.handle == self.value
        if self.name in ("title", ""):
            return self.value.strip("*").lower() in product.title.lower()
        return True  # a field the simulator does not search: Shopify ignores it as well


def product_filter(query: str | None) -> Callable[[Product], bool] | None:
    """Shopify's search syntax, the part a sync uses: ``updated_at:>'…'``, ``status:…``,
    ``handle:…``, ``title:…`` and bare words (in the title)."""
    if not query:
        return None
    terms = [Term(*found) for found in _FILTER.findall(query)]
    terms += [Term("", "", word) for word in _FILTER.sub(" ", query).split()]
    return lambda product: all(term.matches(product) for term in terms)
