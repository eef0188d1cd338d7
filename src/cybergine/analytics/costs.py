"""What the assistants' model calls cost: the summary's model usage (tokens per
provider, model and assistant, ``service.summary``) priced with the operator's prices
(``CYBERGINE_MODEL_PRICES``, ``prices``).

Every token an answer used is counted: ``conversations.answering`` adds up the usage
of each model call an answer made (tool rounds included) before it is stored. A row
of a model with no price has an unknown cost (None), and so has any total that
includes one: a cost is never shown as 0 for want of a price.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cybergine.analytics.prices import ModelPrice, cost, find_price


@dataclass
class CostTotal:
    """Tokens and their cost; ``cost`` None when some of them have no price
    (``priced_cost`` then says what the priced part costs)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    priced_cost: Decimal = Decimal(0)
    unpriced_rows: int = 0

    def add(self, prompt_tokens: int, completion_tokens: int, row_cost: Decimal | None) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        if row_cost is None:
            self.unpriced_rows += 1
        else:
            self.priced_cost += row_cost

    @property
    def cost(self) -> Decimal | None:
        return None if self.unpriced_rows else self.priced_cost


@dataclass
class ModelCosts:
    currency: str
    rows: list[dict[str, Any]]
    total: CostTotal = field(default_factory=CostTotal)
    by_assistant: dict[uuid.UUID | None, CostTotal] = field(default_factory=dict)


def priced(
    model_usage: list[dict[str, Any]], prices: Mapping[str, ModelPrice], currency: str
) -> ModelCosts:
    """The model usage rows with their ``cost`` (a float in ``currency``, None when the
    model has no price), and the totals, overall and per assistant."""
    found = ModelCosts(currency=currency, rows=[])
    for row in model_usage:
        prompt, completion = int(row["prompt_tokens"]), int(row["completion_tokens"])
        row_cost = cost(find_price(prices, row["provider"], row["model"]), prompt, completion)
        found.rows.append({**row, "cost": None if row_cost is None else float(row_cost)})
        found.total.add(prompt, completion, row_cost)
        found.by_assistant.setdefault(row["assistant_id"], CostTotal()).add(
            prompt, completion, row_cost
        )
    return found
