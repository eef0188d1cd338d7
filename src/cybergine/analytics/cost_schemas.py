"""Shapes of what the analytics summary says about the models' cost."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from cybergine.analytics.costs import CostTotal, ModelCosts

_COST = "In the currency; null when some of these tokens' models have no price set"


class CostOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    cost: float | None = Field(description=_COST)
    priced_cost: float = Field(description="What the tokens of the models with a price cost")
    complete: bool = Field(description="Every model of these tokens has a price")

    @classmethod
    def of(cls, total: CostTotal) -> CostOut:
        return cls(
            prompt_tokens=total.prompt_tokens,
            completion_tokens=total.completion_tokens,
            cost=None if total.cost is None else float(total.cost),
            priced_cost=float(total.priced_cost),
            complete=total.cost is not None,
        )


class AssistantCostOut(CostOut):
    assistant_id: uuid.UUID | None


class ModelCostOut(BaseModel):
    currency: str = Field(description="ISO 4217 code (CYBERGINE_MODEL_PRICE_CURRENCY)")
    total: CostOut
    by_assistant: list[AssistantCostOut]

    @classmethod
    def of(cls, costs: ModelCosts) -> ModelCostOut:
        return cls(
            currency=costs.currency,
            total=CostOut.of(costs.total),
            by_assistant=[
                AssistantCostOut(assistant_id=assistant_id, **CostOut.of(total).model_dump())
                for assistant_id, total in costs.by_assistant.items()
            ],
        )
