"""Every analytics figure on a hand-built history (``known.py``) has the value its
definition gives, in the summary, beside the previous period's; and the drill-down of
each count lists exactly the conversations counted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cybergine.conversations.models import Direction, Sender
from cybergine.db.engine import Database
from tests.analytics import known
from tests.analytics.conftest import Seeded, refresh
from tests.support.conversations import make_conversation, make_message


def _summary(seeded: Seeded, **params: Any) -> dict[str, Any]:
    response = seeded.api.get("/api/v1/analytics/summary", params=seeded.period(**params))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_every_headline_figure_has_its_known_value(seeded: Seeded) -> None:
    figures = _summary(seeded)["figures"]
    for name, expected in known.EXPECTED.items():
        assert figures[name]["value"] == pytest.approx(expected), name
    for name, expected in known.EXPECTED_PREVIOUS.items():
        assert figures[name]["previous"] == pytest.approx(expected), name
    assert set(figures) >= set(known.EXPECTED)


def test_the_breakdowns_have_their_known_values(seeded: Seeded) -> None:
    body = _summary(seeded)
    assert body["by_state"] == known.EXPECTED_STATES
    assert {row["channel"]: row["conversations"] for row in body["by_channel"]} == (
        known.EXPECTED_CHANNELS
    )
    by_assistant = {row["assistant_id"]: row["conversations"] for row in body["by_assistant"]}
    assert by_assistant == {str(seeded.known.assistant_a): 5, str(seeded.known.assistant_b): 1}
    assert {row["reason"]: row["handoffs"] for row in body["handoff_reasons"]} == (
        known.EXPECTED_REASONS
    )
    assert {row["item_id"]: row["citations"] for row in body["top_sources"]} == (
        known.EXPECTED_SOURCES
    )
    assert {
        (row["provider"], row["model"]): (
            row["answers"],
            row["prompt_tokens"],
            row["completion_tokens"],
        )
        for row in body["model_usage"]
    } == known.EXPECTED_MODELS


def test_filters_narrow_every_figure(seeded: Seeded) -> None:
    webchat = _summary(seeded, channel="webchat")["figures"]
    assert webchat["conversations"]["value"] == 2  # C2, C6
    assert webchat["handed_to_person"]["value"] == 2
    assert webchat["human_first_response_seconds"]["value"] == 2400
    b = _summary(seeded, assistant_id=str(seeded.known.assistant_b))["figures"]
    assert b["conversations"]["value"] == 1  # C3: open, so no containment yet
    assert b["containment_rate"]["value"] == 0
    assert b["first_response_business_seconds"]["value"] is None  # B keeps no hours


@pytest.mark.parametrize("figure", sorted(known.EXPECTED_DRILLDOWN))
def test_the_drilldown_lists_exactly_the_conversations_counted(seeded: Seeded, figure: str) -> None:
    summary = _summary(seeded)
    link = summary["drilldown"][figure]
    response = seeded.api.get(f"{link}&limit=200")
    assert response.status_code == 200, response.text
    listed = {item["id"] for item in response.json()["items"]}
    names = {str(id): name for name, id in seeded.known.conversations.items()}
    assert {names[id] for id in listed} == known.EXPECTED_DRILLDOWN[figure]
    assert len(listed) == summary["figures"][figure]["value"]


async def test_answer_and_deflection_rates_are_of_the_conversations_the_assistant_answered(
    seeded: Seeded, database: Database
) -> None:
    """C8, added to the history: the assistant's only answer is its fallback, then the
    customer asks for a person. Answered by the assistant, but neither answered from a
    source nor deflected (Fin's answer and deflection rates)."""
    monday = known.monday_of_last_week(seeded.known.last)
    at = monday + timedelta(days=1, hours=14)
    async with database.transaction() as session:
        c8 = await make_conversation(
            session,
            seeded.known.organisation_id,
            created_at=at,
            assistant_id=seeded.known.assistant_a,
        )
        await make_message(session, c8, direction=Direction.INBOUND, created_at=at)
        await make_message(
            session,
            c8,
            direction=Direction.OUTBOUND,
            sender=Sender.ASSISTANT,
            grounded=False,
            created_at=at + timedelta(seconds=20),
        )
        c8.handoff_at, c8.handoff_reason = at + timedelta(minutes=1), "customer_request"
    await refresh(database, seeded.known)
    figures = _summary(seeded)["figures"]
    assert figures["answered_by_assistant"]["value"] == 4
    assert figures["answer_rate"]["value"] == pytest.approx(3 / 4)
    assert figures["deflection_rate"]["value"] == pytest.approx(2 / 4)
    assert figures["with_grounded_answer"]["value"] == 3
    assert figures["deflected"]["value"] == 2


def test_the_timeseries_adds_up_to_the_summary(seeded: Seeded) -> None:
    response = seeded.api.get("/api/v1/analytics/timeseries", params=seeded.period(interval="day"))
    assert response.status_code == 200, response.text
    points = response.json()["points"]
    days = (seeded.known.last - seeded.known.first).days + 1
    assert len(points) == days
    assert sum(p["figures"]["conversations"] for p in points) == 6
    monday = points[0]["figures"]
    assert monday["conversations"] == 4  # C1, C2, C5, C6
    assert monday["resolved_by_assistant"] == 1
    hourly = seeded.api.get(
        "/api/v1/analytics/timeseries", params=seeded.period(interval="hour")
    ).json()["points"]
    assert len(hourly) == days * 24
    assert [p["figures"]["conversations"] for p in hourly[7:9]] == [1, 2]  # 07:00: C2; 08:00


def test_days_follow_the_timezone_asked_for(seeded: Seeded) -> None:
    # In Honolulu (UTC-10) Monday 07:30-08:30 UTC is Sunday evening: outside the period.
    figures = _summary(seeded, timezone="Pacific/Honolulu")["figures"]
    assert figures["conversations"]["value"] == 3  # C4, C5, C3 (C1, C2, C6 on Sunday)
