"""Shapes of the API usage report (``GET /api/v1/analytics/api-usage``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from cybergine.analytics.schemas import PeriodOut


class ApiUsageRowOut(BaseModel):
    api_key_id: uuid.UUID
    key_name: str | None = Field(description="The key's name; null once the key is deleted")
    key_prefix: str | None
    method: str
    route: str = Field(description="The route's template, e.g. /api/v1/conversations/{id}")
    requests: int
    client_errors: int = Field(description="Answered 4xx")
    server_errors: int = Field(description="Answered 5xx")
    p50_ms: float = Field(description="Median latency, milliseconds")
    p95_ms: float = Field(description="95th percentile latency, milliseconds")
    last_at: datetime = Field(description="The latest request's time")


class ApiUsageOut(BaseModel):
    period: PeriodOut
    rows: list[ApiUsageRowOut]
