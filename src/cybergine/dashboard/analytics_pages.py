"""The Analytics page: a period (from/to, or the last 7, 28 or 90 days) and filters
(assistant, channel) in a GET form; the headline figures beside the previous period's;
charts drawn as inline SVG, each with a summary and its data table; and every figure,
point, bar and cell linked to the conversations behind it in the inbox. Every member who
may read conversations may read it, as with ``/api/v1/analytics``.

Nothing a person types gives an error page: a value that is not one becomes a message,
and the page shows the default period (the last 28 days) instead."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from starlette.datastructures import QueryParams

from cybergine.accounts.permissions import Permission
from cybergine.analytics import distributions, service
from cybergine.analytics.definitions import Figure
from cybergine.analytics.periods import DEFAULT_DAYS, Filters, Interval, period, period_of
from cybergine.analytics.reading import AnalyticsReader, read_analytics
from cybergine.assistants.models import Assistant
from cybergine.conversations.models import Conversation
from cybergine.dashboard import analytics_charts as charts
from cybergine.dashboard.analytics_drill import CHANNEL_NAMES, inbox_url, period_text
from cybergine.dashboard.analytics_figures import figure_views
from cybergine.dashboard.analytics_form import narrowing
from cybergine.dashboard.templating import render_page
from cybergine.db.tenancy import TenantScope
from cybergine.errors import CybergineError, NotFound

router = APIRouter(include_in_schema=False)

# Checked on the primary, read on the analytics database when there is one.
Reader = Annotated[AnalyticsReader, read_analytics(Permission.CONVERSATIONS_READ)]

PRESETS = (7, 28, 90)
# Up to two days: a point per hour; up to 92 days: per day; longer: per week.
HOURLY_DAYS = 2
DAILY_DAYS = 92


@dataclass
class Choice:
    """The period and filters the page shows, and what was wrong with the query."""

    filters: Filters
    preset: int | None
    errors: list[str] = field(default_factory=list)


def _default(timezone: str, days: int = DEFAULT_DAYS) -> Filters:
    return Filters(period_of(None, None, timezone, days=days))


def choose(query: QueryParams, default_timezone: str) -> Choice:
    """The page's question from its query string, leniently: each value that is not one
    adds a message and falls back to its default."""
    errors: list[str] = []
    chosen_by = narrowing(query, default_timezone, errors)
    timezone = chosen_by.timezone
    preset: int | None = None
    first, last = query.get("from", "").strip(), query.get("to", "").strip()
    try:
        if first or last:
            chosen = period_of(
                date.fromisoformat(first) if first else None,
                date.fromisoformat(last) if last else None,
                timezone,
            )
        else:
            preset = int(query.get("range", DEFAULT_DAYS))
            if preset not in PRESETS:
                raise ValueError(preset)
            chosen = _default(timezone, preset).period
    except (ValueError, CybergineError) as exc:
        reason = exc.detail if isinstance(exc, CybergineError) else "Dates are like 2026-03-31."
        errors.append(f"{reason} Showing the last {DEFAULT_DAYS} days.")
        preset, chosen = DEFAULT_DAYS, _default(timezone).period
    return Choice(Filters(chosen, chosen_by.assistant_id, chosen_by.channel), preset, errors)


async def _assistants(scope: TenantScope) -> list[Assistant]:
    rows = await scope.session.execute(scope.select(Assistant).order_by(Assistant.name))
    return list(rows.scalars())


def organisation_timezone(assistants: list[Assistant]) -> str:
    """The organisation's time zone: its assistants' business hours' zone when they agree
    on one, else UTC."""
    zones = {
        str(a.business_hours.get("timezone"))
        for a in assistants
        if isinstance(a.business_hours, dict) and a.business_hours.get("timezone")
    }
    return zones.pop() if len(zones) == 1 else "UTC"


def _query(filters: Filters, **extra: str) -> str:
    found = {"timezone": filters.period.timezone, **extra}
    if filters.assistant_id is not None:
        found["assistant_id"] = str(filters.assistant_id)
    if filters.channel is not None:
        found["channel"] = filters.channel.value
    return urlencode(found)


def _link(figure: Figure, filters: Filters, **narrow: Any) -> str:
    return inbox_url(distributions.Selection(figure, **narrow), filters)


def _interval(filters: Filters) -> Interval:
    days = (filters.period.last - filters.period.first).days + 1
    if days <= HOURLY_DAYS:
        return Interval.HOUR
    return Interval.DAY if days <= DAILY_DAYS else Interval.WEEK


@dataclass(frozen=True)
class Row:
    label: str
    cells: list[str]
    href: str | None


@dataclass(frozen=True)
class _Slot:
    """One interval of the charts over time: its axis label, its name in words, and the
    filters (and hour) naming its conversations."""

    label: str
    title: str
    filters: Filters
    narrow: dict[str, Any]


def _slots(points: list[service.Point], filters: Filters, interval: Interval) -> list[_Slot]:
    zone = ZoneInfo(filters.period.timezone)
    slots = []
    for point in points:
        local: datetime = point.start.astimezone(zone)
        day = local.date()
        narrow: dict[str, Any] = {}
        if interval == Interval.HOUR:
            label, title = local.strftime("%H:00"), local.strftime("%a %-d %b, %H:00")
            narrow = {"hour": local.hour}
            within = replace(filters, period=period(day, day, filters.period.timezone))
        elif interval == Interval.DAY:
            label, title = local.strftime("%-d %b"), local.strftime("%a %-d %b %Y")
            within = replace(filters, period=period(day, day, filters.period.timezone))
        else:
            first = max(day, filters.period.first)
            last = min(day + timedelta(days=6), filters.period.last)
            label, title = local.strftime("%-d %b"), f"week of {local.strftime('%-d %b %Y')}"
            within = replace(filters, period=period(first, last, filters.period.timezone))
        slots.append(_Slot(label, title, within, narrow))
    return slots


def _volume(points: list[service.Point], slots: list[_Slot]) -> dict[str, Any]:
    counts = [point.totals["conversations"] for point in points]
    links = [
        _link(Figure.CONVERSATIONS, slot.filters, **slot.narrow) if count else None
        for slot, count in zip(slots, counts, strict=True)
    ]
    titles = [slot.title for slot in slots]
    busiest = max(range(len(counts)), key=lambda i: counts[i], default=None)
    return {
        "chart": charts.bars(
            counts,
            [slot.label for slot in slots],
            [f"{t}: {c:g} conversations" for t, c in zip(titles, counts, strict=True)],
            links,
        ),
        "rows": [
            Row(t, [f"{c:g}"], link) for t, c, link in zip(titles, counts, links, strict=True)
        ],
        "total": sum(counts),
        "busiest": titles[busiest] if busiest is not None and counts[busiest] else None,
        "busiest_count": counts[busiest] if busiest is not None else 0,
    }


def _rate(
    points: list[service.Point], slots: list[_Slot], part: Figure, whole: str, said: str
) -> dict[str, Any]:
    """A rate per interval, ``part`` of ``whole`` (none where ``whole`` is 0), drawn as a
    line whose every point links to the conversations ``part`` counts; its table gives
    the rate and the count behind it."""
    parts = [point.totals[part.value] for point in points]
    rates = [
        part_ / point.totals[whole] if point.totals[whole] else None
        for part_, point in zip(parts, points, strict=True)
    ]
    links = [_link(part, slot.filters, **slot.narrow) for slot in slots]
    known = [r for r in rates if r is not None]
    return {
        "chart": charts.rate_line(
            rates,
            [slot.label for slot in slots],
            [
                f"{slot.title}: {r:.0%} {said}" if r is not None else slot.title
                for slot, r in zip(slots, rates, strict=True)
            ],
            links,
        ),
        "rows": [
            Row(slot.title, [f"{r:.1%}" if r is not None else "-", f"{n:g}"], link if n else None)
            for slot, r, n, link in zip(slots, rates, parts, links, strict=True)
        ],
        "low": min(known) if known else None,
        "high": max(known) if known else None,
        "total": sum(point.totals[whole] for point in points),
    }


def _responses(found: dict[str, list[int]], filters: Filters) -> dict[str, Any]:
    names = list(distributions.RESPONSE_TIMES)
    labels = [bucket.label for bucket in distributions.BUCKETS]
    links = [
        [
            _link(Figure.CONVERSATIONS, filters, response=name, bucket=index) if count else None
            for index, count in enumerate(found[name])
        ]
        for name in names
    ]
    titles = [
        [
            f"{distributions.RESPONSE_TIMES[name]}, {label}: {count} conversations"
            for label, count in zip(labels, found[name], strict=True)
        ]
        for name in names
    ]
    chart = charts.grouped_bars([list(map(float, found[n])) for n in names], labels, titles, links)
    rows = [
        Row(label, [str(found[name][index]) for name in names], None)
        for index, label in enumerate(labels)
    ]
    return {
        "chart": chart,
        "rows": rows,
        "links": links,
        "series": [distributions.RESPONSE_TIMES[name] for name in names],
        "totals": [sum(found[name]) for name in names],
    }


def _heat(grid: list[list[int]], filters: Filters) -> dict[str, Any]:
    days = distributions.WEEKDAYS
    titles = [
        [f"{days[d]} {h:02d}:00-{h:02d}:59: {grid[d][h]} conversations" for h in range(24)]
        for d in range(7)
    ]
    links = [
        [
            _link(Figure.CONVERSATIONS, filters, weekday=d + 1, hour=h) if grid[d][h] else None
            for h in range(24)
        ]
        for d in range(7)
    ]
    busiest = max(((d, h) for d in range(7) for h in range(24)), key=lambda c: grid[c[0]][c[1]])
    return {
        "chart": charts.heatmap(grid, [day[:3] for day in days], titles, links),
        "days": days,
        "grid": grid,
        "links": links,
        "busiest": titles[busiest[0]][busiest[1]] if grid[busiest[0]][busiest[1]] else None,
    }


@router.get("/analytics", response_class=HTMLResponse)
async def analytics_page(request: Request, reader: Reader) -> HTMLResponse:
    scope = reader.scope
    assistants = await _assistants(scope)
    default_timezone = organisation_timezone(assistants)
    choice = choose(request.query_params, default_timezone)
    filters = choice.filters
    try:
        await service.check_filters(scope, filters)
    except NotFound:
        choice.errors.append("That assistant is not one of yours; showing all of them.")
        filters = replace(filters, assistant_id=None)
    has_conversations = (
        await scope.session.execute(
            select(Conversation.id)
            .where(Conversation.organisation_id == scope.organisation_id)
            .limit(1)
        )
    ).first() is not None
    context: dict[str, Any] = {
        "filters": filters,
        "choice": choice,
        "error": " ".join(choice.errors) or None,
        "assistants": assistants,
        "channels": CHANNEL_NAMES,
        "presets": [(days, _query(filters, range=str(days))) for days in PRESETS],
        "period_text": period_text(
            filters.period.first, filters.period.last, filters.period.timezone
        ),
        "has_conversations": has_conversations,
        "csv_url": "/api/v1/analytics/conversations.csv?"
        + _query(filters, **{"from": str(filters.period.first), "to": str(filters.period.last)}),
    }
    if has_conversations:
        found = await service.summary(scope, filters)
        previous_last = filters.period.first - timedelta(days=1)
        previous_first = previous_last - (filters.period.last - filters.period.first)
        links = {figure: _link(figure, filters) for figure in Figure}
        interval = _interval(filters)
        points = await service.timeseries(scope, filters, interval)
        slots = _slots(points, filters, interval)
        context |= {
            "groups": figure_views(found.current.headline(), found.previous.headline(), links),
            "previous_text": period_text(previous_first, previous_last, filters.period.timezone),
            "interval": interval.value,
            "volume": _volume(points, slots),
            "containment": _rate(
                points, slots, Figure.RESOLVED_BY_ASSISTANT, "conversations", "contained"
            ),
            "csat": _rate(points, slots, Figure.CSAT_POSITIVE, "csat_responses", "satisfied"),
            "responses": _responses(await distributions.response_times(scope, filters), filters),
            "heat": _heat(await distributions.hours_of_week(scope, filters), filters),
        }
    return await render_page(request, "analytics.html", reader.caller, context)
