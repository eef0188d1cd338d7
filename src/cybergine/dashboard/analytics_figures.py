"""The Analytics page's headline figures as a person reads them: each value of
``Totals.headline()`` with its label, the previous period's value beside it, the change,
and the link to the conversations it counts. A figure this page does not know yet (one
added to the summary later) is shown all the same, labelled from its name and formatted
by its kind (``_rate``/``_score``: a percentage, ``_seconds``: a duration)."""

from __future__ import annotations

from dataclasses import dataclass

from cybergine.analytics.definitions import Figure

# Groups of the page, in order, with the figures each shows first (and their labels).
GROUPS: dict[str, dict[str, str]] = {
    "Volume": {
        "conversations": "Conversations",
        "unique_customers": "Unique customers",
        "messages_in": "Messages in",
        "messages_out": "Messages out",
    },
    "Outcomes": {
        "containment_rate": "Containment rate",
        "involvement_rate": "Involvement rate",
        "assistant_resolution_rate": "Assistant resolution rate",
        "answer_rate": "Answer rate",
        "deflection_rate": "Deflection rate",
        "answered_by_assistant": "Answered by the assistant",
        "resolved_by_assistant": "Resolved by the assistant",
        "handed_to_person": "Handed to a person",
        "with_grounded_answer": "Answered from a source",
        "deflected": "Kept by the assistant",
        "handoff_rate": "Hand-off rate",
        "resolved": "Resolved",
    },
    "Response times": {
        "first_response_seconds": "First response, assistant",
        "agent_first_response_seconds": "First response, people",
        "human_first_response_seconds": "Human first response (after hand-off)",
        "resolution_seconds": "Resolution time",
        "first_response_business_seconds": "First response, assistant, business hours",
        "agent_first_response_business_seconds": "First response, people, business hours",
        "human_first_response_business_seconds": "Human first response, business hours",
        "resolution_business_seconds": "Resolution time, business hours",
    },
    "Answer quality": {
        "grounded_answers": "Grounded answers",
        "fallbacks": "Fallback answers",
        "grounded_rate": "Grounded rate",
        "with_fallback": "Conversations with a fallback",
        "assistant_answers": "Assistant answers",
    },
    "Satisfaction": {
        "csat_score": "CSAT score",
        "csat_response_rate": "CSAT response rate",
        "csat_surveys_sent": "Surveys sent",
        "csat_responses": "Survey answers",
        "csat_positive": "Satisfied answers (4 or 5)",
    },
    "Model usage": {
        "prompt_tokens": "Prompt tokens",
        "completion_tokens": "Completion tokens",
    },
}
# Where a figure no group names goes.
OTHER_GROUP = "More figures"
OTHER_GROUPS = {"csat": "Satisfaction", "cost": "Model usage", "token": "Model usage"}
# A higher value of these is worse: their change is not an improvement when it rises.
LOWER_IS_BETTER = ("_seconds", "fallback", "handed_to_person", "handoff_rate")
# The counts that are better or worse for being higher (others are volume).
DIRECTED_COUNTS = frozenset(
    {
        "resolved_by_assistant",
        "with_grounded_answer",
        "deflected",
        "grounded_answers",
        "fallbacks",
        "with_fallback",
        "csat_positive",
    }
)


def kind_of(name: str) -> str:
    if name.endswith(("_rate", "_score")):
        return "rate"
    if name.endswith("_seconds"):
        return "duration"
    if "cost" in name:
        return "money"
    return "count"


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    if seconds < 86400:
        hours, rest = divmod(round(seconds / 60), 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, rest = divmod(round(seconds / 3600), 24)
    return f"{days} d {rest} h" if rest else f"{days} d"


def value_text(name: str, value: float | None) -> str:
    if value is None:
        return "none"
    kind = kind_of(name)
    if kind == "rate":
        return f"{value:.1%}"
    if kind == "duration":
        return duration_text(value)
    if kind == "money":
        return f"{value:,.2f}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def change_text(name: str, value: float | None, previous: float | None) -> str:
    """The change from the previous period, in words that need no colour."""
    if value is None or previous is None:
        return "no comparison"
    if kind_of(name) == "rate":
        points = (value - previous) * 100
        if abs(points) < 0.05:
            return "no change"
        return f"{'up' if points > 0 else 'down'} {abs(points):.1f} points"
    if value == previous:
        return "no change"
    if not previous:
        return "up from none"
    ratio = (value - previous) / previous
    return f"{'up' if ratio > 0 else 'down'} {abs(ratio):.0%}"


def label_of(name: str) -> str:
    for figures in GROUPS.values():
        if name in figures:
            return figures[name]
    words = name.removesuffix("_seconds").replace("_", " ")
    return words[:1].upper() + words[1:]


# The conversations behind a figure that is not a count of them: a rate's numerator;
# any other figure (messages, times, tokens) is made of the period's conversations.
BEHIND = {
    "containment_rate": "resolved_by_assistant",
    "involvement_rate": "answered_by_assistant",
    "assistant_resolution_rate": "resolved_by_assistant",
    "handoff_rate": "handed_to_person",
    "answer_rate": "with_grounded_answer",
    "deflection_rate": "deflected",
    "fallbacks": "with_fallback",
    "csat_score": "csat_positive",
    "csat_response_rate": "csat_responses",
}
_FIGURES = {figure.value: figure for figure in Figure}


def behind(name: str) -> Figure:
    """The figure whose conversations a figure is made of."""
    return _FIGURES.get(name) or _FIGURES.get(BEHIND.get(name, "")) or Figure.CONVERSATIONS


@dataclass(frozen=True)
class FigureView:
    name: str
    label: str
    value: str
    previous: str
    change: str
    # "better", "worse" or "" (no change, or a figure without a direction), said in words.
    direction: str
    href: str | None


def _direction(name: str, value: float | None, previous: float | None) -> str:
    if value is None or previous is None or value == previous:
        return ""
    # Volume, tokens and cost are neither better nor worse for being higher.
    if kind_of(name) not in ("rate", "duration") and name not in DIRECTED_COUNTS:
        return ""
    rising = value > previous
    worse = any(part in name for part in LOWER_IS_BETTER)
    return "worse" if rising == worse else "better"


def figure_views(
    current: dict[str, float | None],
    previous: dict[str, float | None],
    links: dict[Figure, str],
) -> list[tuple[str, list[FigureView]]]:
    """The figures of ``current`` grouped as the page shows them; every one of them."""
    placed: dict[str, list[str]] = {group: [] for group in [*GROUPS, OTHER_GROUP]}
    for group, figures in GROUPS.items():
        placed[group] = [name for name in figures if name in current]
    known = {name for names in placed.values() for name in names}
    for name in current:
        if name in known:
            continue
        group = next((g for part, g in OTHER_GROUPS.items() if part in name), OTHER_GROUP)
        placed[group].append(name)

    def view(name: str) -> FigureView:
        value, before = current[name], previous.get(name)
        return FigureView(
            name,
            label_of(name),
            value_text(name, value),
            value_text(name, before),
            change_text(name, value, before),
            _direction(name, value, before),
            links.get(behind(name)),
        )

    return [(group, [view(name) for name in names]) for group, names in placed.items() if names]
