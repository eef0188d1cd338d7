"""What the analytics pages' GET forms share (the Analytics page, the Knowledge gaps
page): the time zone, assistant and channel read leniently from the query string. A
value that is not one adds a readable message and falls back to its default, so nothing
a person types gives an error page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from cybergine.analytics.periods import today_in
from cybergine.conversations.models import Channel
from cybergine.errors import CybergineError


@dataclass(frozen=True)
class Narrowing:
    """The time zone the days are in, and the assistant and channel chosen (None: all)."""

    timezone: str
    assistant_id: uuid.UUID | None
    channel: Channel | None


def narrowing(query: QueryParams, default_timezone: str, errors: list[str]) -> Narrowing:
    """The form's time zone (``default_timezone`` when empty or unknown), assistant and
    channel; each value that is not one appends its message to ``errors``."""
    timezone = query.get("timezone", "").strip() or default_timezone
    try:
        today_in(timezone)
    except CybergineError:
        errors.append(f"“{timezone[:64]}” is not a time zone we know; showing {default_timezone}.")
        timezone = default_timezone
    assistant_id = None
    if raw := query.get("assistant_id", ""):
        try:
            assistant_id = uuid.UUID(raw)
        except ValueError:
            errors.append("Choose one of the assistants offered; showing all of them.")
    channel = None
    if raw := query.get("channel", ""):
        try:
            channel = Channel(raw)
        except ValueError:
            errors.append("Choose one of the channels offered; showing every channel.")
    return Narrowing(timezone, assistant_id, channel)
