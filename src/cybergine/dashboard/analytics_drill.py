"""The drill-down from the Analytics page to the inbox: the link to the conversations
behind a figure, a chart point, a bucket or a cell (``inbox_url``), and the inbox's
reading of it (``drill_of``, a dependency of the inbox's list), with the sentence its
banner shows. The query parameters are the API's (``analytics``, ``from``, ``to``,
``timezone``, ``assistant_id``, ``channel``) plus ``weekday``, ``hour``, ``response`` and
``bucket``, which only the dashboard's charts need."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query
from sqlalchemy import Subquery

from cybergine.analytics import distributions, gaps
from cybergine.analytics.api import drilldown_query, drilldown_url
from cybergine.analytics.definitions import Figure
from cybergine.analytics.periods import Filters, period
from cybergine.analytics.question_schemas import gap_query, top_question_query
from cybergine.conversations.models import Channel
from cybergine.errors import InvalidInput

FIGURE_LABELS = {
    Figure.CONVERSATIONS: "conversations",
    Figure.ANSWERED_BY_ASSISTANT: "answered by the assistant",
    Figure.RESOLVED_BY_ASSISTANT: "resolved by the assistant",
    Figure.HANDED_TO_PERSON: "handed to a person",
    Figure.RESOLVED: "resolved",
    Figure.WITH_FALLBACK: "with a fallback answer",
    Figure.WITH_GROUNDED_ANSWER: "answered from a source",
    Figure.DEFLECTED: "kept by the assistant (never handed to a person)",
}


def period_text(first: date, last: date, timezone: str) -> str:
    if first == last:
        days = first.strftime("%-d %B %Y")
    elif first.year == last.year:
        days = f"{first.strftime('%-d %B')} to {last.strftime('%-d %B %Y')}"
    else:
        days = f"{first.strftime('%-d %B %Y')} to {last.strftime('%-d %B %Y')}"
    return f"{days} ({timezone})"


def _narrowing(selection: distributions.Selection) -> dict[str, str]:
    """The parameters only the dashboard's charts add: a point's weekday or hour, a
    response time's bucket."""
    found: dict[str, str] = {}
    for name in ("weekday", "hour", "response", "bucket"):
        value = getattr(selection, name)
        if value is not None:
            found[name] = str(value)
    return found


def drill_query(selection: distributions.Selection, filters: Filters) -> dict[str, str]:
    """The query parameters naming ``selection`` in ``filters``: the API's drill-down
    (``analytics.api.drilldown_query``) and the charts' narrowing."""
    return {**drilldown_query(selection.figure, filters), **_narrowing(selection)}


def inbox_url(selection: distributions.Selection, filters: Filters) -> str:
    """The inbox listing exactly the conversations ``selection`` names in ``filters``."""
    return drilldown_url(selection.figure, filters, path="/inbox", narrow=_narrowing(selection))


@dataclass(frozen=True)
class Drill:
    """A drill-down the inbox shows: which conversations, said in words, and the query
    parameters that name it (kept by the inbox's filters and pages)."""

    selection: distributions.Selection
    filters: Filters
    query: dict[str, str]
    # A group of questions' conversations instead of a figure's (``analytics.gaps``):
    # its knowledge gap's questions, or all of them (``causes``).
    gap: uuid.UUID | None = None
    causes: tuple[str, ...] = gaps.GAP_CAUSES

    @property
    def label(self) -> str:
        if self.gap is not None and self.causes == gaps.GAP_CAUSES:
            return "a knowledge gap's questions"
        if self.gap is not None:
            return "a top question's questions"
        selection = self.selection
        what = FIGURE_LABELS.get(selection.figure, selection.figure.value.replace("_", " "))
        parts = []
        if selection.response is not None and selection.bucket is not None:
            who = distributions.RESPONSE_TIMES[selection.response].lower()
            bucket = distributions.BUCKETS[selection.bucket].label
            parts.append(f"{who}'s first response {bucket}")
        if selection.weekday is not None:
            parts.append(f"begun on a {distributions.WEEKDAYS[selection.weekday - 1]}")
        if selection.hour is not None:
            parts.append(f"between {selection.hour:02d}:00 and {selection.hour:02d}:59")
        narrowed = f" ({', '.join(parts)})" if parts else ""
        return f"{what}{narrowed}"

    @property
    def back(self) -> tuple[str, str]:
        """The page the drill-down came from, with its query, and the link's words."""
        query = urlencode(self.query)
        if self.gap is None:
            return f"/analytics?{query}", "Back to analytics"
        if self.causes == gaps.GAP_CAUSES:
            return f"/analytics/knowledge-gaps?{query}", "Back to knowledge gaps"
        return f"/analytics/top-questions?{query}", "Back to top questions"

    @property
    def period(self) -> str:
        found = period_text(
            self.filters.period.first, self.filters.period.last, self.filters.period.timezone
        )
        if self.filters.channel is not None:
            found += f", {CHANNEL_NAMES[self.filters.channel]}"
        return found

    def conversations(self, organisation_id: uuid.UUID) -> Subquery:
        if self.gap is not None:
            return gaps.group_conversations(organisation_id, self.gap, self.filters, self.causes)
        return distributions.selected_conversations(organisation_id, self.selection, self.filters)


CHANNEL_NAMES = {Channel.WHATSAPP: "WhatsApp", Channel.WEBCHAT: "Web chat"}

_Text = Annotated[str, Query(max_length=64)]


def drill_of(
    analytics: _Text = "",
    first: Annotated[str, Query(alias="from", max_length=20)] = "",
    last: Annotated[str, Query(alias="to", max_length=20)] = "",
    timezone: _Text = "UTC",
    assistant_id: _Text = "",
    channel: _Text = "",
    weekday: _Text = "",
    hour: _Text = "",
    response: _Text = "",
    bucket: _Text = "",
    knowledge_gap: _Text = "",
    top_question: _Text = "",
) -> Drill | None:
    """The drill-down a query names (None without ``analytics``, ``knowledge_gap`` or
    ``top_question``); a readable 422 for anything it cannot be."""
    if (knowledge_gap or top_question) and not analytics:
        return _group_drill(
            knowledge_gap, top_question, first, last, timezone, assistant_id, channel
        )
    if not analytics:
        return None
    try:
        figure = Figure(analytics)
    except ValueError as exc:
        raise InvalidInput("That figure has no conversations to list.", field="analytics") from exc
    try:
        days = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError as exc:
        raise InvalidInput("A figure's conversations need its period: from and to.") from exc
    try:
        chosen_assistant = uuid.UUID(assistant_id) if assistant_id else None
        chosen_channel = Channel(channel) if channel else None
        chosen_weekday = int(weekday) if weekday else None
        chosen_hour = int(hour) if hour else None
        chosen_bucket = int(bucket) if bucket else None
    except ValueError as exc:
        raise InvalidInput("That link names no conversations we can list.") from exc
    if chosen_weekday is not None and not 1 <= chosen_weekday <= 7:
        raise InvalidInput("A weekday is 1 (Monday) to 7 (Sunday).", field="weekday")
    if chosen_hour is not None and not 0 <= chosen_hour <= 23:
        raise InvalidInput("An hour is 0 to 23.", field="hour")
    if (response or chosen_bucket is not None) and (
        response not in distributions.RESPONSE_TIMES
        or chosen_bucket is None
        or not 0 <= chosen_bucket < len(distributions.BUCKETS)
    ):
        raise InvalidInput("That link names no response time we measure.", field="bucket")
    filters = Filters(period(*days, timezone), chosen_assistant, chosen_channel)
    selection = distributions.Selection(
        figure, chosen_weekday, chosen_hour, response or None, chosen_bucket
    )
    return Drill(selection, filters, drill_query(selection, filters))


def _group_drill(
    gap: str, top: str, first: str, last: str, timezone: str, assistant_id: str, channel: str
) -> Drill:
    """The conversations behind a knowledge gap's questions asked in the period, or
    behind all of a top question's (the Knowledge gaps and Top questions pages' links)."""
    try:
        group = uuid.UUID(gap or top)
        days = date.fromisoformat(first), date.fromisoformat(last)
        chosen_assistant = uuid.UUID(assistant_id) if assistant_id else None
        chosen_channel = Channel(channel) if channel else None
    except ValueError as exc:
        raise InvalidInput("That link names no conversations we can list.") from exc
    filters = Filters(period(*days, timezone), chosen_assistant, chosen_channel)
    query, causes = (gap_query, gaps.GAP_CAUSES) if gap else (top_question_query, gaps.CAUSES)
    selection = distributions.Selection(Figure.CONVERSATIONS)
    return Drill(selection, filters, query(group, filters), group, causes)
