"""The analytics API refuses what makes no sense as problem+json, treats another
organisation's assistant as unknown, counts nothing of another organisation, and lets a
viewer read."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cybergine.db.engine import Database
from tests.analytics.conftest import Seeded
from tests.analytics.known import seed
from tests.support.factories import make_organisation_with_key
from tests.support.server import LiveServer

ROUTES = ("summary", "timeseries", "conversations.csv")


def _problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    return body


@pytest.mark.parametrize("route", ROUTES)
def test_a_period_ending_before_it_starts_is_refused(seeded: Seeded, route: str) -> None:
    response = seeded.api.get(
        f"/api/v1/analytics/{route}", params={"from": "2026-03-10", "to": "2026-03-09"}
    )
    assert "ends before it starts" in str(_problem(response, 422))


@pytest.mark.parametrize("route", ROUTES)
def test_a_period_longer_than_a_year_is_refused(seeded: Seeded, route: str) -> None:
    first = date(2025, 1, 1)
    response = seeded.api.get(
        f"/api/v1/analytics/{route}",
        params={"from": first.isoformat(), "to": (first + timedelta(days=366)).isoformat()},
    )
    assert "at most 366 days" in str(_problem(response, 422))


@pytest.mark.parametrize("route", [*ROUTES, "knowledge-gaps"])
def test_a_last_day_alone_before_the_calendar_is_refused_not_a_server_error(
    seeded: Seeded, route: str
) -> None:
    # The first day defaults to four weeks before the last: from the first day of year 1
    # there is none, which once was an overflow and a 500.
    response = seeded.api.get(f"/api/v1/analytics/{route}", params={"to": "0001-01-01"})
    problem = _problem(response, 422)
    assert "Name a day from 1970-01-01" in str(problem)
    assert "'to'" in str(problem) or '"to"' in str(problem), problem


def test_a_last_day_alone_near_the_calendars_start_begins_on_its_first_day(
    seeded: Seeded,
) -> None:
    response = seeded.api.get("/api/v1/analytics/summary", params={"to": "1970-01-10"})
    assert response.status_code == 200, response.text
    assert response.json()["period"]["from"] == "1970-01-01"
    later = seeded.api.get("/api/v1/analytics/summary", params={"to": "2026-03-31"})
    assert later.json()["period"]["from"] == "2026-03-04"


def test_an_unknown_timezone_is_refused(seeded: Seeded) -> None:
    response = seeded.api.get(
        "/api/v1/analytics/summary", params=seeded.period(timezone="Mars/Olympus")
    )
    assert "timezone" in str(_problem(response, 422))


@pytest.mark.parametrize("route", ROUTES)
def test_an_unknown_assistant_is_not_found(seeded: Seeded, route: str) -> None:
    response = seeded.api.get(
        f"/api/v1/analytics/{route}",
        params=seeded.period(assistant_id="00000000-0000-7000-8000-000000000000"),
    )
    _problem(response, 404)


@pytest.mark.parametrize("route", [*ROUTES, "drilldown"])
async def test_another_organisations_assistant_is_not_found_and_not_counted(
    seeded: Seeded, live_server: LiveServer, database: Database, route: str
) -> None:
    other, key = await make_organisation_with_key(database, name="Other shop")
    async with database.transaction() as session:
        theirs = await seed(session, other.id, datetime.now(UTC))
    params = seeded.period(assistant_id=str(theirs.assistant_a))
    if route == "drilldown":
        response = seeded.api.get(
            "/api/v1/conversations", params={**params, "analytics": "resolved"}
        )
    else:
        response = seeded.api.get(f"/api/v1/analytics/{route}", params=params)
    _problem(response, 404)
    # Their history doubles nothing of ours, and ours shows nothing of theirs.
    ours = seeded.api.get("/api/v1/analytics/summary", params=seeded.period()).json()
    assert ours["figures"]["conversations"]["value"] == 6
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as client:
        their_view = client.get("/api/v1/analytics/summary", params=seeded.period()).json()
    assert their_view["figures"]["conversations"]["value"] == 0  # not refreshed yet


def test_a_drilldown_needs_its_period(seeded: Seeded) -> None:
    response = seeded.api.get("/api/v1/conversations", params={"analytics": "resolved"})
    assert "period" in str(_problem(response, 422))


def test_the_routes_are_documented_in_openapi(seeded: Seeded) -> None:
    document = seeded.api.get("/api/v1/openapi.json").json()
    for route in ROUTES:
        operation = document["paths"][f"/api/v1/analytics/{route}"]["get"]
        assert {"401", "403", "404", "422"} <= set(operation["responses"])
    conversations = document["paths"]["/api/v1/conversations"]["get"]
    assert "analytics" in {parameter["name"] for parameter in conversations["parameters"]}


def test_days_beyond_the_calendar_we_keep_are_refused(seeded: Seeded) -> None:
    for first, last in (("0001-01-01", "0001-01-02"), ("9999-12-30", "9999-12-31")):
        response = seeded.api.get("/api/v1/analytics/summary", params={"from": first, "to": last})
        _problem(response, 422)


def test_a_zone_file_that_is_no_zone_name_is_refused(seeded: Seeded) -> None:
    response = seeded.api.get(
        "/api/v1/analytics/summary", params=seeded.period(timezone="localtime")
    )
    _problem(response, 422)


def test_without_dates_a_question_is_about_the_last_four_weeks(seeded: Seeded) -> None:
    response = seeded.api.get(
        "/api/v1/analytics/summary", params={"timezone": "Pacific/Kiritimati"}
    )
    assert response.status_code == 200, response.text
    period = response.json()["period"]
    today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    assert period["to"] == today.isoformat()
    assert period["from"] == (today - timedelta(days=27)).isoformat()
    # Only an end: the four weeks before it.
    ending = seeded.api.get("/api/v1/analytics/summary", params={"to": "2026-03-28"}).json()
    assert (ending["period"]["from"], ending["period"]["to"]) == ("2026-03-01", "2026-03-28")
