"""An assistant's business hours, checked and put in order: ``{"timezone": "Europe/Paris",
"days": {"mon": [["09:00", "18:00"]], ...}}``. Used when an assistant is saved and when a
message asks whether someone is there (``conversations.intents``)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cybergine.errors import InvalidInput

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RANGES_PER_DAY = 6

_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")


def _minutes(clock: Any, where: str) -> int:
    if not isinstance(clock, str) or not _CLOCK.fullmatch(clock):
        raise InvalidInput(
            f"Business hours: {where} has {clock!r}; times are HH:MM, 00:00 to 24:00.",
            field="business_hours",
        )
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def clean_business_hours(value: Mapping[str, Any]) -> dict[str, Any]:
    """``{"timezone": "Europe/Paris", "days": {"mon": [["09:00", "18:00"]], ...}}``.

    A day that is missing or has no ranges is closed; ranges are sorted and may not
    overlap.
    """

    def problem(message: str) -> InvalidInput:
        return InvalidInput(f"Business hours: {message}", field="business_hours")

    if not isinstance(value, Mapping):
        raise problem("give an object with a timezone and days.")
    unknown = set(value) - {"timezone", "days"}
    if unknown:
        raise problem(f"unknown keys {sorted(unknown)}; use 'timezone' and 'days'.")
    timezone = value.get("timezone")
    if not isinstance(timezone, str) or not timezone.strip():
        raise problem("name a timezone, such as 'Europe/Paris'.")
    try:
        ZoneInfo(timezone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise problem(f"{timezone!r} is not a known timezone (e.g. 'Europe/Paris').") from None
    days = value.get("days")
    if not isinstance(days, Mapping):
        raise problem("'days' maps mon, tue, ... sun to lists of [start, end] times.")
    cleaned_days: dict[str, list[list[str]]] = {}
    for day, ranges in days.items():
        if day not in WEEKDAYS:
            raise problem(f"{day!r} is not a day; use {', '.join(WEEKDAYS)}.")
        if not isinstance(ranges, list) or len(ranges) > MAX_RANGES_PER_DAY:
            raise problem(f"{day} takes a list of at most {MAX_RANGES_PER_DAY} [start, end].")
        spans: list[tuple[int, int, str, str]] = []
        for span in ranges:
            if not isinstance(span, list | tuple) or len(span) != 2:
                raise problem(f"{day} has {span!r}; each range is [start, end].")
            start, end = _minutes(span[0], day), _minutes(span[1], day)
            if start >= end:
                raise problem(f"{day}: {span[0]} to {span[1]} ends before it starts.")
            spans.append((start, end, span[0], span[1]))
        spans.sort()
        for before, after in itertools.pairwise(spans):
            if after[0] < before[1]:
                raise problem(
                    f"{day}: the ranges {before[2]}-{before[3]} and {after[2]}-{after[3]} overlap."
                )
        cleaned_days[day] = [[s[2], s[3]] for s in spans]
    ordered = {day: cleaned_days[day] for day in WEEKDAYS if day in cleaned_days}
    return {"timezone": timezone.strip(), "days": ordered}
