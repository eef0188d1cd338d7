"""/api/v1/analytics: the headline figures of a period beside the previous one, the same
over time, and one CSV row per conversation; every member may read them (viewers too)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from cybergine.accounts.auth import Authorized, authorize_outside_transaction
from cybergine.accounts.permissions import Permission
from cybergine.analytics import (
    api_usage_report,
    costs,
    definitions,
    embedding_usage,
    service,
)
from cybergine.analytics.api_usage_schemas import ApiUsageOut, ApiUsageRowOut
from cybergine.analytics.cost_schemas import ModelCostOut
from cybergine.analytics.gaps import DEFAULT_GROUPS, MAX_GROUPS
from cybergine.analytics.periods import Filters, Interval, period_of
from cybergine.analytics.question_report import knowledge_gaps as gap_report
from cybergine.analytics.question_report import top_questions as top_report
from cybergine.analytics.question_schemas import (
    KnowledgeGapsOut,
    TopQuestionsOut,
    group_out,
    top_question_out,
)
from cybergine.analytics.reading import (
    AnalyticsReader,
    AnalyticsUnavailable,
    analytics_database,
    analytics_scope,
    read_analytics,
)
from cybergine.analytics.schemas import (
    AssistantCount,
    ChannelCount,
    FigureOut,
    ModelUsageOut,
    PeriodOut,
    PointOut,
    ReasonOut,
    SourceOut,
    SummaryOut,
    TimeseriesOut,
)
from cybergine.conversations.models import Channel
from cybergine.db.engine import Database
from cybergine.errors import NotFound
from cybergine.web.deps import SettingsDep
from cybergine.web.downloads import content_disposition
from cybergine.web.openapi import may_answer

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

# The caller is checked on the primary; the figures are read on the analytics database
# (a read replica) when one is configured (``analytics.reading``).
Reader = Annotated[AnalyticsReader, read_analytics(Permission.CONVERSATIONS_READ)]
# The export streams with no connection held by the request: the caller is checked in a
# short transaction, the rows are read on a connection of the stream's own (on the
# analytics database too).
Exporter = Annotated[Authorized, authorize_outside_transaction(Permission.CONVERSATIONS_READ)]


def filters_of(
    first: Annotated[
        date | None,
        Query(alias="from", description="First local day, included (default: 27 days before to)"),
    ] = None,
    last: Annotated[
        date | None, Query(alias="to", description="Last local day, included (default: today)")
    ] = None,
    timezone: Annotated[
        str, Query(max_length=64, description="IANA zone of the days, e.g. Europe/Paris")
    ] = "UTC",
    assistant_id: uuid.UUID | None = None,
    channel: Channel | None = None,
) -> Filters:
    return Filters(period_of(first, last, timezone), assistant_id, channel)


FiltersDep = Annotated[Filters, Depends(filters_of)]


def _period_out(filters: Filters) -> PeriodOut:
    previous_start, _ = filters.period.previous
    return PeriodOut.model_validate(
        {
            "from": filters.period.first,
            "to": filters.period.last,
            "timezone": filters.period.timezone,
            "start": filters.period.start,
            "end": filters.period.end,
            "previous_start": previous_start,
        }
    )


def drilldown_query(figure: definitions.Figure, filters: Filters) -> dict[str, str]:
    """The query parameters naming the conversations ``figure`` counts in ``filters``."""
    return {"analytics": figure.value, **filters.query}


def drilldown_url(
    figure: definitions.Figure,
    filters: Filters,
    *,
    path: str = "/api/v1/conversations",
    narrow: Mapping[str, str] | None = None,
) -> str:
    """The conversations list showing exactly the conversations ``figure`` counts: the
    API's by default, or another list that reads the same parameters (the dashboard's
    inbox, ``path="/inbox"``), with what ``narrow`` adds (a chart's point, bucket, cell)."""
    return f"{path}?{urlencode({**drilldown_query(figure, filters), **(narrow or {})})}"


@router.get(
    "/summary",
    response_model=SummaryOut,
    responses=may_answer(NotFound, AnalyticsUnavailable),
    summary="Headline figures of a period, the previous period's beside them",
)
async def summary(reader: Reader, filters: FiltersDep, settings: SettingsDep) -> SummaryOut:
    found = await service.summary(reader.scope, filters)
    embedded = await embedding_usage.usage_rows(
        reader.scope.session, reader.scope.organisation_id, filters
    )
    model_costs = costs.priced(
        [*found.breakdowns["model_usage"], *embedded],
        settings.model_prices,
        settings.model_price_currency,
    )
    current, previous = found.current.headline(), found.previous.headline()
    return SummaryOut(
        period=_period_out(filters),
        figures={name: FigureOut(value=current[name], previous=previous[name]) for name in current},
        drilldown={figure.value: drilldown_url(figure, filters) for figure in definitions.Figure},
        by_channel=[ChannelCount(**row) for row in found.breakdowns["by_channel"]],
        by_assistant=[AssistantCount(**row) for row in found.breakdowns["by_assistant"]],
        by_state={k: int(v or 0) for k, v in found.breakdowns["by_state"][0].items()},
        model_usage=[ModelUsageOut(**row) for row in model_costs.rows],
        model_cost=ModelCostOut.of(model_costs),
        top_sources=[SourceOut(**row) for row in found.breakdowns["top_sources"]],
        handoff_reasons=[ReasonOut(**row) for row in found.breakdowns["handoff_reasons"]],
    )


@router.get(
    "/timeseries",
    response_model=TimeseriesOut,
    responses=may_answer(NotFound, AnalyticsUnavailable),
    summary="The figures per hour, day or week of a period",
)
async def timeseries(
    reader: Reader, filters: FiltersDep, interval: Interval = Interval.DAY
) -> TimeseriesOut:
    points = await service.timeseries(reader.scope, filters, interval)
    return TimeseriesOut(
        period=_period_out(filters),
        interval=interval,
        points=[
            PointOut(
                start=point.start,
                figures={
                    k: v for k, v in point.totals.headline().items() if k != "unique_customers"
                },
            )
            for point in points
        ],
    )


@router.get(
    "/api-usage",
    response_model=ApiUsageOut,
    responses=may_answer(AnalyticsUnavailable),
    summary="Requests made with the organisation's API keys, per key and route",
    description="From the API usage log (kept 12 months): per key, method and route template, "
    "the requests, the errors (4xx and 5xx apart) and the median and 95th percentile "
    "latency in milliseconds, busiest first. Requests signed in with a browser session are "
    "not logged. Needs the role that manages API keys.",
)
async def api_usage(
    reader: Annotated[AnalyticsReader, read_analytics(Permission.API_KEYS_MANAGE)],
    first: Annotated[
        date | None, Query(alias="from", description="First local day, included")
    ] = None,
    last: Annotated[date | None, Query(alias="to", description="Last local day, included")] = None,
    timezone: Annotated[str, Query(max_length=64, description="IANA zone of the days")] = "UTC",
    api_key_id: Annotated[uuid.UUID | None, Query(description="Only this key's requests")] = None,
) -> ApiUsageOut:
    filters = filters_of(first, last, timezone)
    rows = await api_usage_report.report(
        reader.scope, filters.period.start, filters.period.end, api_key_id
    )
    return ApiUsageOut(
        period=_period_out(filters), rows=[ApiUsageRowOut(**vars(row)) for row in rows]
    )


@router.get(
    "/conversations.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per conversation"},
        **may_answer(NotFound, AnalyticsUnavailable),
    },
    summary="One CSV row per conversation begun in the period, with its figures",
)
async def conversations_csv(
    exporter: Exporter, filters: FiltersDep, request: Request
) -> StreamingResponse:
    database = analytics_database(request)
    organisation_id = exporter.principal.organisation_id
    # Before the response starts: an unknown assistant is a 404, an unreachable
    # analytics database a 503, not a cut-off download.
    async with analytics_scope(database, organisation_id) as scope:
        await service.check_filters(scope, filters)
    return StreamingResponse(
        _csv_chunks(database, organisation_id, filters),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": content_disposition(
                "attachment",
                f"conversations-{filters.period.first}-{filters.period.last}.csv",
            ),
            "cache-control": "no-store",
        },
    )


async def _csv_chunks(
    database: Database, organisation_id: uuid.UUID, filters: Filters
) -> AsyncIterator[bytes]:
    async with analytics_scope(database, organisation_id) as scope:
        async for chunk in service.conversation_csv(scope.session, organisation_id, filters):
            yield chunk


Groups = Annotated[int, Query(ge=1, le=MAX_GROUPS, description="Groups listed")]


@router.get(
    "/top-questions",
    response_model=TopQuestionsOut,
    responses=may_answer(NotFound, AnalyticsUnavailable),
    summary="The customers' most asked questions, grouped by meaning",
    description="The customers' questions asked in the period that the assistant answered "
    "from a source, answered with the fallback or that the model handed to a person, "
    "grouped by meaning (README: 'top questions'), most asked first, each with how many "
    "were answered from a source. Collected by a job every minute.",
)
async def top_questions(
    reader: Reader, filters: FiltersDep, limit: Groups = DEFAULT_GROUPS
) -> TopQuestionsOut:
    await service.check_filters(reader.scope, filters)
    found = await top_report(reader.scope, filters, limit=limit)
    return TopQuestionsOut(
        period=_period_out(filters),
        questions=found.questions,
        groups=[top_question_out(group, filters) for group in found.groups],
    )


@router.get(
    "/knowledge-gaps",
    response_model=KnowledgeGapsOut,
    responses=may_answer(NotFound, AnalyticsUnavailable),
    summary="Questions the assistant could not answer, grouped by meaning",
    description="The customers' questions asked in the period that got the fallback or that "
    "the model handed to a person, grouped by meaning (README: 'knowledge gap'), most asked "
    "first, answered groups after the open ones. Collected by a job every minute.",
)
async def knowledge_gaps(
    reader: Reader, filters: FiltersDep, limit: Groups = DEFAULT_GROUPS
) -> KnowledgeGapsOut:
    await service.check_filters(reader.scope, filters)
    found = await gap_report(reader.scope, filters, limit=limit)
    return KnowledgeGapsOut(
        period=_period_out(filters),
        questions=found.questions,
        groups=[group_out(group, filters) for group in found.groups],
    )
