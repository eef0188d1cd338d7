"""The assistant form: every setting of an assistant as text a browser shows and sends back,
read into :class:`AssistantChanges` for the service, which holds every rule (the API uses
the same ones). Only what the form's shape adds is checked here: a number that is not a
number, opening hours written in a way that does not read as hours, a choice not offered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar
from zoneinfo import available_timezones

from fastapi import Request

from cybergine.assistants.business_hours import WEEKDAYS
from cybergine.assistants.changes import AssistantChanges
from cybergine.assistants.models import Assistant, LlmProvider, Tone
from cybergine.assistants.service import (
    MAX_COLLECTIONS,
    MAX_LONG_TEXT_CHARS,
    clean_setting,
)
from cybergine.errors import CybergineError, InvalidInput

# One more than the longest text the service takes, so an overlong value reaches it and is
# refused by name rather than silently cut.
MAX_SUBMITTED_CHARS = MAX_LONG_TEXT_CHARS + 1

DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
TONE_LABELS = {
    Tone.FRIENDLY: "Friendly",
    Tone.PROFESSIONAL: "Professional",
    Tone.CONCISE: "Concise",
    Tone.PLAYFUL: "Playful",
}
PROVIDER_LABELS = {
    LlmProvider.EXTRACTIVE: "Offline: quotes your knowledge base (no model needed)",
    LlmProvider.OPENAI: "A language model (OpenAI or any OpenAI-compatible server)",
}
# What a shop sees in a new assistant's opening hours before choosing its own: switching
# to "set opening hours" then starts from a usual week rather than an empty one.
USUAL_WEEK = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "09:00-18:00")
DEFAULT_TIMEZONE = "UTC"

_Choice = TypeVar("_Choice", Tone, LlmProvider)
_Number = TypeVar("_Number", int, float)

# "9:00-18:00", "09:00 - 12:30", "14:00 to 24:00"; en and em dashes too.
_RANGE = re.compile(
    r"(\d{1,2}):(\d{2})\s*(?:-|\u2013|\u2014|to)\s*(\d{1,2}):(\d{2})", re.IGNORECASE
)
_DAY_IN_MESSAGE = re.compile(r"\b(" + "|".join(WEEKDAYS) + r")\b")


@cache
def timezones() -> list[str]:
    """The timezones the form suggests (any the server knows is accepted)."""
    return sorted(zone for zone in available_timezones() if "/" in zone or zone == "UTC")


def _clock(hours: str, minutes: str) -> str:
    return f"{int(hours):02d}:{minutes}"


def _ranges_text(ranges: Iterable[Iterable[str]]) -> str:
    return ", ".join("-".join(span) for span in ranges)


def parse_day(day: str, text: str) -> list[list[str]]:
    """``"09:00-12:00, 14:00-18:00"`` as ``[["09:00", "12:00"], ["14:00", "18:00"]]``;
    empty: closed. Whether the times make sense is the service's rule."""
    spans: list[list[str]] = []
    for part in (p.strip() for p in re.split(r"[,;]", text)):
        if not part:
            continue
        match = _RANGE.fullmatch(part)
        if match is None:
            raise InvalidInput(
                f"{DAY_NAMES[day]}: write the hours like 09:00-18:00, and separate "
                "several with commas (09:00-12:00, 14:00-18:00). Leave it empty when closed.",
                field=f"hours_{day}",
            )
        start_h, start_m, end_h, end_m = match.groups()
        spans.append([_clock(start_h, start_m), _clock(end_h, end_m)])
    return spans


@dataclass
class AssistantForm:
    """What the form shows: the saved settings, or what was just submitted."""

    name: str = ""
    active: bool = True
    persona: str = ""
    instructions: str = ""
    tone: str = Tone.PROFESSIONAL.value
    languages: str = "en"
    greeting: str = ""
    fallback_message: str = ""
    ai_disclosure: str = ""
    knowledge_collections: list[str] = field(default_factory=list)
    llm_provider: str = LlmProvider.EXTRACTIVE.value
    llm_model: str = ""
    llm_base_url: str = ""
    temperature: str = ""
    max_tokens: str = ""
    redact_personal_data: bool = True
    hours_mode: str = "always"  # or "scheduled"
    timezone: str = DEFAULT_TIMEZONE
    hours: dict[str, str] = field(default_factory=dict)
    handoff_keywords: str = ""
    csat_enabled: bool = True
    csat_question: str = ""
    # Write-only: a key typed here is never put back into a page.
    new_api_key: str = ""
    remove_api_key: bool = False

    @classmethod
    def of(cls, assistant: Assistant) -> AssistantForm:
        hours = assistant.business_hours
        return cls(
            name=assistant.name or "",
            active=assistant.active,
            persona=assistant.persona,
            instructions=assistant.instructions,
            tone=Tone(assistant.tone).value,
            languages=", ".join(assistant.languages),
            greeting=assistant.greeting,
            fallback_message=assistant.fallback_message,
            ai_disclosure=assistant.ai_disclosure,
            knowledge_collections=list(assistant.knowledge_collections),
            llm_provider=LlmProvider(assistant.llm_provider).value,
            llm_model=assistant.llm_model,
            llm_base_url=assistant.llm_base_url or "",
            temperature=f"{assistant.temperature:g}",
            max_tokens=str(assistant.max_tokens),
            redact_personal_data=assistant.redact_personal_data,
            hours_mode="always" if hours is None else "scheduled",
            timezone=hours["timezone"] if hours else DEFAULT_TIMEZONE,
            hours=(
                {day: _ranges_text(spans) for day, spans in hours["days"].items()}
                if hours
                else dict(USUAL_WEEK)
            ),
            handoff_keywords="\n".join(assistant.handoff_keywords),
            csat_enabled=assistant.csat_enabled,
            csat_question=assistant.csat_question or "",
        )

    @classmethod
    async def read(cls, request: Request) -> AssistantForm:
        form = await request.form()

        def text(name: str) -> str:
            value = form.get(name)
            return value[:MAX_SUBMITTED_CHARS] if isinstance(value, str) else ""

        collections = [v for v in form.getlist("knowledge_collections") if isinstance(v, str)]
        return cls(
            name=text("name"),
            active=bool(text("active")),
            persona=text("persona"),
            instructions=text("instructions"),
            tone=text("tone"),
            languages=text("languages"),
            greeting=text("greeting"),
            fallback_message=text("fallback_message"),
            ai_disclosure=text("ai_disclosure"),
            # One more than allowed, so that too many is refused rather than cut.
            knowledge_collections=[v[:MAX_SUBMITTED_CHARS] for v in collections][
                : MAX_COLLECTIONS + 1
            ],
            llm_provider=text("llm_provider"),
            llm_model=text("llm_model"),
            llm_base_url=text("llm_base_url"),
            temperature=text("temperature"),
            max_tokens=text("max_tokens"),
            redact_personal_data=bool(text("redact_personal_data")),
            hours_mode="scheduled" if text("hours_mode") == "scheduled" else "always",
            timezone=text("timezone"),
            hours={day: text(f"hours_{day}") for day in WEEKDAYS},
            handoff_keywords=text("handoff_keywords"),
            csat_enabled=bool(text("csat_enabled")),
            csat_question=text("csat_question"),
            new_api_key=text("llm_api_key"),
            remove_api_key=bool(text("remove_llm_api_key")),
        )

    def changes(self) -> AssistantChanges:
        """Every setting the form holds (the widget's are on the Channels page), parsed
        and checked by the service's rules; :class:`FormInvalid` lists every mistake."""
        # A value, or how to read it from the form's text (which may find a mistake).
        values: dict[str, Any] = {
            "name": self.name,
            "active": self.active,
            "persona": self.persona,
            "instructions": self.instructions,
            "tone": lambda: _choice(Tone, self.tone, "tone", "Choose one of the tones offered."),
            "languages": lambda: [tag for tag in re.split(r"[,\s]+", self.languages) if tag],
            "greeting": self.greeting,
            "fallback_message": self.fallback_message,
            "ai_disclosure": self.ai_disclosure,
            "knowledge_collections": self.knowledge_collections,
            "llm_provider": lambda: _choice(
                LlmProvider, self.llm_provider, "llm_provider", "Choose how it answers."
            ),
            "llm_model": self.llm_model,
            "llm_base_url": self.llm_base_url.strip() or None,
            "temperature": lambda: _number(
                self.temperature, float, "temperature", "The temperature is a number such as 0.2."
            ),
            "max_tokens": lambda: _number(
                self.max_tokens, int, "max_tokens", "The longest answer is a whole number."
            ),
            "redact_personal_data": self.redact_personal_data,
            "business_hours": self._business_hours,
            "handoff_keywords": self.handoff_keywords.splitlines(),
            "csat_enabled": self.csat_enabled,
            "csat_question": self.csat_question,
        }
        if self.remove_api_key and self.new_api_key.strip():
            values["llm_api_key"] = _refuse(
                "Either type a new key or remove the saved one, not both.", "llm_api_key"
            )
        elif self.remove_api_key:
            values["llm_api_key"] = None
        elif self.new_api_key.strip():
            values["llm_api_key"] = self.new_api_key
        checked: dict[str, Any] = {}
        problems: list[InvalidInput] = []
        for name, value in values.items():
            try:
                checked[name] = value() if callable(value) else value
                clean_setting(name, checked[name])
            except FormInvalid as several:
                problems.extend(several.problems)
            except InvalidInput as problem:
                problems.append(problem)
        if problems:
            raise FormInvalid(problems)
        return AssistantChanges(**checked, fields_set=set(checked))

    def _business_hours(self) -> dict[str, Any] | None:
        if self.hours_mode != "scheduled":
            return None
        days: dict[str, list[list[str]]] = {}
        problems: list[InvalidInput] = []
        for day in WEEKDAYS:
            try:
                days[day] = parse_day(day, self.hours.get(day, ""))
            except InvalidInput as problem:
                problems.append(problem)
        if problems:
            raise FormInvalid(problems)
        return {"timezone": self.timezone, "days": {d: spans for d, spans in days.items() if spans}}


class FormInvalid(InvalidInput):
    """Every mistake in a submitted form, each naming its field; the first one is the
    error's own detail and field (what the API would have answered)."""

    def __init__(self, problems: list[InvalidInput]) -> None:
        super().__init__(problems[0].detail, **problems[0].extra)
        self.problems = problems


def _refuse(message: str, name: str) -> Callable[[], Any]:
    def refuse() -> Any:
        raise InvalidInput(message, field=name)

    return refuse


def _choice(kind: type[_Choice], value: str, name: str, message: str) -> _Choice:
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(message, field=name) from None


def _number(value: str, kind: type[_Number], name: str, message: str) -> _Number:
    try:
        return kind(value.strip().replace(",", "."))
    except ValueError:
        raise InvalidInput(message, field=name) from None


def field_errors(error: CybergineError) -> tuple[dict[str, str], str | None]:
    """Where errors are shown: ``{form field: message}`` next to the field each names, and
    a message for the top of the page when one names no field the form has."""
    errors: dict[str, str] = {}
    elsewhere: list[str] = []
    for problem in error.problems if isinstance(error, FormInvalid) else [error]:
        name = _field_of(problem)
        if name is None:
            elsewhere.append(problem.detail)
        else:
            errors.setdefault(name, problem.detail)
    return errors, " ".join(elsewhere) or None


def _field_of(error: CybergineError) -> str | None:
    """The form's field an error is about, if the form has it."""
    name = error.extra.get("field")
    if name == "business_hours":
        # The hours' rules name the day a problem is on ("Business hours: tue: ...").
        day = _DAY_IN_MESSAGE.search(error.detail)
        if day is not None:
            name = f"hours_{day.group(1)}"
        elif "timezone" in error.detail:
            name = "timezone"
    return name if isinstance(name, str) and name in FORM_FIELDS else None


FORM_FIELDS = frozenset(
    {
        "name",
        "active",
        "persona",
        "instructions",
        "tone",
        "languages",
        "greeting",
        "fallback_message",
        "ai_disclosure",
        "knowledge_collections",
        "llm_provider",
        "llm_model",
        "llm_base_url",
        "llm_api_key",
        "temperature",
        "max_tokens",
        "redact_personal_data",
        "business_hours",
        "timezone",
        "handoff_keywords",
        "csat_enabled",
        "csat_question",
        *(f"hours_{day}" for day in WEEKDAYS),
    }
)


def collection_choices(existing: Iterable[str], chosen: Iterable[str]) -> list[str]:
    """The collections to offer: the organisation's, and any the assistant names that do
    not exist (yet), so that saving the form does not drop them."""
    names = list(dict.fromkeys(existing))
    names += [name for name in chosen if name not in names]
    return names
