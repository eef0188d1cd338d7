"""The Top questions and Knowledge gaps pages: the customers' questions grouped by
meaning (``analytics.gaps``), all of them or those the assistant could not answer, for a
period (from/to, default the last 28 days) and filters (assistant, channel) in a GET
form, as ``GET /api/v1/analytics/top-questions`` and ``/knowledge-gaps`` give them. Each
group shows its counts, its representative question, its newest examples and a link to
the conversations behind it in the inbox, and a one-click "Answer this" that opens the
Q&A form pre-filled with the question (writing the pair marks the gap answered). Every
member who may read conversations may read them.

Nothing a person types gives an error page: a value that is not one becomes a message,
and the page shows the default instead."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import QueryParams

from cybergine.accounts.permissions import Permission
from cybergine.analytics import service
from cybergine.analytics.periods import DEFAULT_DAYS, Filters, period_of
from cybergine.analytics.question_report import KNOWLEDGE_GAPS, TOP_QUESTIONS, Kind, report
from cybergine.analytics.question_schemas import answer_url, gap_query, top_question_query
from cybergine.analytics.reading import AnalyticsReader, read_analytics
from cybergine.assistants.models import Assistant
from cybergine.dashboard.analytics_drill import CHANNEL_NAMES
from cybergine.dashboard.analytics_form import narrowing
from cybergine.dashboard.templating import render_page
from cybergine.errors import CybergineError, NotFound
from cybergine.knowledge.providers import embedding_provider
from cybergine.settings import Settings
from cybergine.web.deps import SettingsDep

router = APIRouter(include_in_schema=False)

# Each report's page: its template, and the drill-down query naming a group's conversations.
_PAGES = {
    KNOWLEDGE_GAPS: ("knowledge_gaps.html", gap_query),
    TOP_QUESTIONS: ("top_questions.html", top_question_query),
}

# Checked on the primary, read on the analytics database when there is one.
Reader = Annotated[AnalyticsReader, read_analytics(Permission.CONVERSATIONS_READ)]


def choose(query: QueryParams) -> tuple[Filters, list[str]]:
    """The page's period and filters from its query string, leniently: each value that
    is not one adds a message and falls back to its default."""
    errors: list[str] = []
    chosen_by = narrowing(query, "UTC", errors)
    timezone = chosen_by.timezone
    first, last = query.get("from", "").strip(), query.get("to", "").strip()
    try:
        chosen = period_of(
            date.fromisoformat(first) if first else None,
            date.fromisoformat(last) if last else None,
            timezone,
        )
    except (ValueError, CybergineError) as exc:
        reason = exc.detail if isinstance(exc, CybergineError) else "Dates are like 2026-03-31."
        errors.append(f"{reason} Showing the last {DEFAULT_DAYS} days.")
        chosen = period_of(None, None, timezone)
    return Filters(chosen, chosen_by.assistant_id, chosen_by.channel), errors


@router.get("/analytics/top-questions", response_class=HTMLResponse)
async def top_questions_page(
    request: Request, reader: Reader, settings: SettingsDep
) -> HTMLResponse:
    return await _page(request, reader, settings, TOP_QUESTIONS)


@router.get("/analytics/knowledge-gaps", response_class=HTMLResponse)
async def knowledge_gaps_page(
    request: Request, reader: Reader, settings: SettingsDep
) -> HTMLResponse:
    return await _page(request, reader, settings, KNOWLEDGE_GAPS)


async def _page(
    request: Request, reader: AnalyticsReader, settings: Settings, kind: Kind
) -> HTMLResponse:
    scope, caller = reader.scope, reader.caller
    filters, errors = choose(request.query_params)
    try:
        await service.check_filters(scope, filters)
    except NotFound:
        errors.append("That assistant is not one of yours; showing all of them.")
        filters = replace(filters, assistant_id=None)
    assistants = list(
        (await scope.session.execute(scope.select(Assistant).order_by(Assistant.name))).scalars()
    )
    found = await report(scope, filters, kind)
    template, drill = _PAGES[kind]
    context: dict[str, Any] = {
        "filters": filters,
        "error": " ".join(errors) or None,
        "assistants": assistants,
        "channels": CHANNEL_NAMES,
        "report": found,
        "answer_urls": {group.id: answer_url(group) for group in found.groups},
        "inbox_urls": {
            group.id: f"/inbox?{urlencode(drill(group.id, filters))}" for group in found.groups
        },
        "can_answer": caller.principal.can(Permission.CONFIGURATION_MANAGE),
        "has_model": embedding_provider(settings) is not None,
    }
    return await render_page(request, template, caller, context)
