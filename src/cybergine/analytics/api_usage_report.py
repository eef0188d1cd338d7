"""What the API usage log says about a period: per key, method and route template, the
requests, the errors (4xx and 5xx apart) and the median and 95th percentile latency."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func

from cybergine.accounts.models import ApiKey
from cybergine.analytics.api_usage_models import ApiCall
from cybergine.db.tenancy import TenantScope

# The most rows a report lists (per key, method and route): far more than an API has routes.
MAX_ROWS = 1000


@dataclass(frozen=True)
class UsageRow:
    api_key_id: uuid.UUID
    key_name: str | None
    key_prefix: str | None
    method: str
    route: str
    requests: int
    client_errors: int
    server_errors: int
    p50_ms: float
    p95_ms: float
    last_at: datetime


async def report(
    scope: TenantScope, start: datetime, end: datetime, api_key_id: uuid.UUID | None = None
) -> list[UsageRow]:
    """The organisation's calls from ``start`` (included) to ``end`` (excluded), busiest
    first; only ``api_key_id``'s when given (another organisation's key has none here).
    A deleted key's calls are listed under its id, with no name."""
    statement = (
        scope.select(ApiCall)
        .with_only_columns(
            ApiCall.api_key_id,
            ApiKey.name,
            ApiKey.prefix,
            ApiCall.method,
            ApiCall.route,
            func.count().label("requests"),
            func.count().filter(ApiCall.status.between(400, 499)).label("client_errors"),
            func.count().filter(ApiCall.status >= 500).label("server_errors"),
            func.percentile_cont(0.5).within_group(ApiCall.latency_ms).label("p50_ms"),
            func.percentile_cont(0.95).within_group(ApiCall.latency_ms).label("p95_ms"),
            func.max(ApiCall.created_at).label("last_at"),
        )
        .outerjoin(
            ApiKey,
            and_(
                ApiKey.id == ApiCall.api_key_id, ApiKey.organisation_id == ApiCall.organisation_id
            ),
        )
        .where(ApiCall.created_at >= start, ApiCall.created_at < end)
        .group_by(ApiCall.api_key_id, ApiKey.name, ApiKey.prefix, ApiCall.method, ApiCall.route)
        .order_by(func.count().desc(), ApiCall.route, ApiCall.method, ApiCall.api_key_id)
        .limit(MAX_ROWS)
    )
    if api_key_id is not None:
        statement = statement.where(ApiCall.api_key_id == api_key_id)
    rows = await scope.session.execute(statement)
    return [
        UsageRow(
            api_key_id=row.api_key_id,
            key_name=row.name,
            key_prefix=row.prefix,
            method=row.method,
            route=row.route,
            requests=int(row.requests),
            client_errors=int(row.client_errors),
            server_errors=int(row.server_errors),
            p50_ms=float(row.p50_ms),
            p95_ms=float(row.p95_ms),
            last_at=row.last_at,
        )
        for row in rows
    ]


# What the API keys page shows: the last four weeks, as the analytics routes' default.
RECENT_DAYS = 28


async def recent(scope: TenantScope, now: datetime | None = None) -> list[UsageRow]:
    """The last ``RECENT_DAYS`` days' calls, up to now."""
    end = now or datetime.now(UTC)
    return await report(scope, end - timedelta(days=RECENT_DAYS), end)
