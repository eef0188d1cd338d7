"""CSAT figures on hand-built conversations whose surveys and ratings are known.

In the period (Monday of last week to today, UTC), all closed, one assistant:
S1 WhatsApp, Monday 09:00, rated 5;  S2 web chat, Monday 10:00, rated 4;
S3 WhatsApp, Tuesday 09:00, rated 2; S4 WhatsApp, Tuesday 11:00, survey unanswered;
S5 web chat, Wednesday 09:00, open: no survey.
In the period before (three days before Monday): P1 rated 1, P2 unanswered.

surveys sent 4, responses 3, positive 2: csat_score 2/3, csat_response_rate 3/4;
before: sent 2, responses 1, positive 0: csat_score 0, csat_response_rate 1/2.
"""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from cybergine.accounts.models import Role
from cybergine.analytics import rollups
from cybergine.assistants.models import Assistant
from cybergine.conversations import csat
from cybergine.conversations.csat_models import CsatSurvey
from cybergine.conversations.models import (
    Channel,
    Conversation,
    ConversationState,
    Direction,
    Sender,
)
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from tests.analytics.conftest import measure
from tests.analytics.known import monday_of_last_week
from tests.support.conversations import make_conversation, make_message
from tests.support.factories import make_api_key, make_organisation
from tests.support.inbox import member, signed_in
from tests.support.inbox import rows as inbox_rows
from tests.support.server import LiveServer


@dataclass
class Surveyed:
    organisation_id: uuid.UUID
    api: httpx.Client
    first: date
    last: date
    conversations: dict[str, uuid.UUID]

    def period(self, **extra: Any) -> dict[str, Any]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), **extra}

    def summary(self, **extra: Any) -> dict[str, Any]:
        response = self.api.get("/api/v1/analytics/summary", params=self.period(**extra))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def _seed(database: Database, organisation_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    monday = monday_of_last_week(now.date())
    made: dict[str, uuid.UUID] = {}
    async with database.transaction() as session:
        assistant = TenantScope(session, organisation_id).add(Assistant(name="Sam"))
        await session.flush()

        async def conversation(
            name: str, start: datetime, channel: Channel, rating: int | None, *, survey: bool
        ) -> Conversation:
            row = await make_conversation(
                session,
                organisation_id,
                created_at=start,
                assistant_id=assistant.id,
                channel=channel,
            )
            await make_message(
                session, row, direction=Direction.INBOUND, sender=Sender.CUSTOMER, created_at=start
            )
            row.last_message_at = start
            if survey:
                row.state, row.closed_at = ConversationState.CLOSED, start + timedelta(minutes=30)
                TenantScope(session, organisation_id).add(
                    CsatSurvey(
                        conversation_id=row.id,
                        customer_id=row.customer_id,
                        created_at=start + timedelta(minutes=30),
                        rating=rating,
                        rated_at=start + timedelta(minutes=31) if rating else None,
                    )
                )
            made[name] = row.id
            return row

        def at(day: int, hour: int) -> datetime:
            return monday + timedelta(days=day, hours=hour)

        await conversation("S1", at(0, 9), Channel.WHATSAPP, 5, survey=True)
        await conversation("S2", at(0, 10), Channel.WEBCHAT, 4, survey=True)
        await conversation("S3", at(1, 9), Channel.WHATSAPP, 2, survey=True)
        await conversation("S4", at(1, 11), Channel.WHATSAPP, None, survey=True)
        await conversation("S5", at(2, 9), Channel.WEBCHAT, None, survey=False)
        await conversation("P1", at(-3, 9), Channel.WHATSAPP, 1, survey=True)
        await conversation("P2", at(-3, 10), Channel.WHATSAPP, None, survey=True)
        await session.flush()
    return {"first": monday.date(), "last": now.date(), "conversations": made}


async def _refresh(database: Database, organisation_id: uuid.UUID) -> None:
    async with database.transaction() as session:
        await rollups.refresh(session, organisation_id, measure())


@pytest.fixture
async def surveyed(live_server: LiveServer, database: Database) -> AsyncIterator[Surveyed]:
    organisation, _ = await make_organisation(database, name="Surveyed")
    seeded = await _seed(database, organisation.id, datetime.now(UTC))
    await _refresh(database, organisation.id)
    key = await make_api_key(database, organisation.id, Role.VIEWER)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as client:
        yield Surveyed(organisation.id, client, **seeded)


def test_the_csat_figures_have_their_known_values(surveyed: Surveyed) -> None:
    figures = surveyed.summary()["figures"]
    expected = {
        "csat_surveys_sent": (4, 2),
        "csat_responses": (3, 1),
        "csat_positive": (2, 0),
        "csat_score": (2 / 3, 0),
        "csat_response_rate": (3 / 4, 1 / 2),
    }
    for name, (value, previous) in expected.items():
        assert figures[name]["value"] == pytest.approx(value), name
        assert figures[name]["previous"] == pytest.approx(previous), name


def test_the_csat_figures_follow_the_filters(surveyed: Surveyed) -> None:
    webchat = surveyed.summary(channel="webchat")["figures"]
    assert webchat["csat_surveys_sent"]["value"] == 1  # S2
    assert webchat["csat_score"]["value"] == 1.0
    assert webchat["csat_response_rate"]["value"] == 1.0


@pytest.mark.parametrize(
    ("figure", "names"),
    [
        ("csat_surveys_sent", {"S1", "S2", "S3", "S4"}),
        ("csat_responses", {"S1", "S2", "S3"}),
        ("csat_positive", {"S1", "S2"}),
    ],
)
def test_the_drilldown_lists_the_surveyed_conversations(
    surveyed: Surveyed, figure: str, names: set[str]
) -> None:
    summary = surveyed.summary()
    response = surveyed.api.get(f"{summary['drilldown'][figure]}&limit=200")
    assert response.status_code == 200, response.text
    listed = {item["id"] for item in response.json()["items"]}
    by_id = {str(id): name for name, id in surveyed.conversations.items()}
    assert {by_id[id] for id in listed} == names
    assert len(listed) == summary["figures"][figure]["value"]


def test_the_export_has_each_conversations_survey_and_rating(surveyed: Surveyed) -> None:
    with surveyed.api.stream(
        "GET", "/api/v1/analytics/conversations.csv", params=surveyed.period()
    ) as response:
        assert response.status_code == 200, response.read()
        body = "".join(response.iter_text())
    by_id = {str(id): name for name, id in surveyed.conversations.items()}
    rows = {by_id[row["conversation_id"]]: row for row in csv.DictReader(io.StringIO(body))}
    assert {name: (row["csat_surveys_sent"], row["csat_rating"]) for name, row in rows.items()} == {
        "S1": ("true", "5"),
        "S2": ("true", "4"),
        "S3": ("true", "2"),
        "S4": ("true", ""),
        "S5": ("false", ""),
    }


def test_the_timeseries_counts_surveys_on_their_conversations_day(surveyed: Surveyed) -> None:
    response = surveyed.api.get(
        "/api/v1/analytics/timeseries", params=surveyed.period(interval="day")
    )
    assert response.status_code == 200, response.text
    days = [p["figures"] for p in response.json()["points"][:3]]
    assert [d["csat_surveys_sent"] for d in days] == [2, 2, 0]
    assert [d["csat_responses"] for d in days] == [2, 1, 0]


async def test_a_rating_given_later_reaches_the_aggregates_by_the_next_refresh(
    surveyed: Surveyed, database: Database
) -> None:
    async with database.transaction() as session:
        conversation = await session.get_one(Conversation, surveyed.conversations["S4"])
        survey = (
            await session.execute(
                TenantScope(session, surveyed.organisation_id)
                .select(CsatSurvey)
                .where(CsatSurvey.conversation_id == conversation.id)
            )
        ).scalar_one()
        rated = await csat.record_rating(
            session, surveyed.organisation_id, conversation.customer_id, survey.id, 4
        )
        assert rated.recorded
    await _refresh(database, surveyed.organisation_id)
    figures = surveyed.summary()["figures"]
    assert figures["csat_responses"]["value"] == 4
    assert figures["csat_score"]["value"] == pytest.approx(3 / 4)
    assert figures["csat_response_rate"]["value"] == 1.0


async def test_the_analytics_page_charts_the_score_per_day_with_its_conversations(
    surveyed: Surveyed, live_server: LiveServer, database: Database
) -> None:
    viewer = await member(database, surveyed.organisation_id, Role.VIEWER)
    query = urlencode({**surveyed.period(), "timezone": "UTC"})
    with signed_in(live_server.url, viewer) as browser:
        page = browser.get(f"/analytics?{query}")
        assert page.status_code == 200, page.text
        section = page.text.split('data-testid="chart-csat"', 1)[1].split("</section>", 1)[0]
        assert "from 0 % to 100 %, over 3 ratings" in section
        rows = {
            m["day"]: (m["score"], m["href"] and html.unescape(m["href"]), m["count"])
            for m in _CSAT_ROW.finditer(section)
        }
        monday = surveyed.first.strftime("%a %-d %b %Y")
        tuesday = (surveyed.first + timedelta(days=1)).strftime("%a %-d %b %Y")
        assert (rows[monday][0], rows[monday][2]) == ("100.0%", "2")  # S1 (5), S2 (4)
        assert rows[tuesday] == ("0.0%", None, "0")  # S3 (2); S4 unanswered
        listed = browser.get(rows[monday][1])
        names = {str(id): name for name, id in surveyed.conversations.items()}
        assert {names[row.id] for row in inbox_rows(listed.text)} == {"S1", "S2"}


_CSAT_ROW = re.compile(
    r'<tr><th scope="row">(?P<day>[^<]+)</th><td>(?P<score>[^<]+)</td>'
    r'<td>(?:<a href="(?P<href>[^"]+)">)?(?P<count>\d+)'
)
