"""Shapes of the analytics API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from cybergine.analytics.cost_schemas import ModelCostOut
from cybergine.analytics.periods import Interval


class FigureOut(BaseModel):
    value: float | None = Field(description="In the period (null: nothing to divide by)")
    previous: float | None = Field(description="In the period of the same length before it")


class ChannelCount(BaseModel):
    channel: str
    conversations: int
    resolved_by_assistant: int


class AssistantCount(BaseModel):
    assistant_id: uuid.UUID | None
    conversations: int
    resolved_by_assistant: int


class ModelUsageOut(BaseModel):
    kind: Literal["chat", "embeddings"] = Field(
        default="chat",
        description="chat: the assistant's answers' model calls; embeddings: calls to a "
        "billed embeddings endpoint (a local model's are not counted)",
    )
    provider: str | None
    model: str | None
    assistant_id: uuid.UUID | None
    purpose: str | None = Field(
        default=None,
        description="Embeddings: retrieval, knowledge, product_search, products or "
        "knowledge_gaps (README: 'Analytics: what each figure means')",
    )
    requests: int | None = Field(default=None, description="Embeddings: requests made")
    answers: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None = Field(
        default=None, description="In model_cost's currency; null: the model has no price set"
    )


class SourceOut(BaseModel):
    item_id: str
    title: str | None = Field(description="The knowledge item's title, if it still exists")
    citations: int


class ReasonOut(BaseModel):
    reason: str = Field(description="customer_request, human_review, keyword or other")
    handoffs: int


class PeriodOut(BaseModel):
    from_: date = Field(alias="from")
    to: date
    timezone: str
    start: datetime = Field(description="The period's first UTC hour")
    end: datetime = Field(description="The UTC hour after its last")
    previous_start: datetime = Field(description="Where the previous period starts")


class SummaryOut(BaseModel):
    period: PeriodOut
    figures: dict[str, FigureOut] = Field(
        description="Each headline figure (README: 'Analytics: what each figure means')"
    )
    drilldown: dict[str, str] = Field(
        description="For each count of conversations, the conversations list that shows them"
    )
    by_channel: list[ChannelCount]
    by_assistant: list[AssistantCount]
    by_state: dict[str, int]
    model_usage: list[ModelUsageOut]
    model_cost: ModelCostOut = Field(
        description="The model usage's cost, in all and per assistant (CYBERGINE_MODEL_PRICES)"
    )
    top_sources: list[SourceOut]
    handoff_reasons: list[ReasonOut]


class PointOut(BaseModel):
    start: datetime = Field(description="The interval's start (a local midnight for days)")
    figures: dict[str, float | None]


class TimeseriesOut(BaseModel):
    period: PeriodOut
    interval: Interval
    points: list[PointOut]
