"""The Analytics page over real HTTP, signed in as a viewer (the least role that may read
analytics), on the hand-built history of ``tests/analytics/known.py``: the figures it
shows, the previous period beside them, and the drill-down links from figures, bars and
cells into the inbox, which lists exactly the conversations counted."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from cybergine.accounts.models import Role
from cybergine.analytics import rollups
from cybergine.db.engine import Database
from tests.analytics import known
from tests.support.browser import Browser
from tests.support.factories import make_organisation
from tests.support.inbox import member, rows, signed_in
from tests.support.server import LiveServer

_FIGURE = re.compile(
    r'data-figure="(?P<name>[a-z_]+)">\s*<span class="figure-label">[^<]*</span>\s*'
    r'(?:<a class="figure-value" href="(?P<href>[^"]+)"[^>]*>|<span class="figure-value">)'
    r"(?P<value>[^<]*)<.*?"
    r'data-testid="figure-previous">(?P<previous>[^<]*)<.*?'
    r'data-testid="figure-change">(?P<change>[^<]*)<',
    re.DOTALL,
)


@dataclass(frozen=True)
class Shown:
    value: str
    previous: str
    change: str
    href: str | None


def figures(page: str) -> dict[str, Shown]:
    return {
        m["name"]: Shown(
            m["value"].strip(),
            m["previous"].strip(),
            m["change"].strip(),
            html.unescape(m["href"]) if m["href"] else None,
        )
        for m in _FIGURE.finditer(page)
    }


@dataclass
class World:
    history: known.Known
    browser: Browser

    def period(self, **extra: str) -> str:
        query = {
            "from": self.history.first.isoformat(),
            "to": self.history.last.isoformat(),
            "timezone": "UTC",
            **extra,
        }
        return urlencode(query)

    def listed(self, href: str) -> set[str]:
        """The names of the conversations the inbox lists at ``href``."""
        page = self.browser.get(href)
        assert page.status_code == 200, page.text
        names = {str(id): name for name, id in self.history.conversations.items()}
        return {names[row.id] for row in rows(page.text)}


@pytest.fixture
async def world(live_server: LiveServer, database: Database) -> AsyncIterator[World]:
    organisation, _ = await make_organisation(database, name="Known history")
    async with database.transaction() as session:
        history = await known.seed(session, organisation.id, datetime.now(UTC))
    async with database.transaction() as session:
        measure = rollups.Measure(datetime.now(UTC), timedelta(hours=known.IDLE_HOURS))
        await rollups.refresh(session, organisation.id, measure)
    viewer = await member(database, organisation.id, Role.VIEWER)
    with signed_in(live_server.url, viewer) as browser:
        yield World(history, browser)


def _page(world: World, **extra: str) -> str:
    page = world.browser.get(f"/analytics?{world.period(**extra)}")
    assert page.status_code == 200, page.text
    return page.text


async def test_the_page_shows_the_known_figures_beside_the_previous_period(world: World) -> None:
    shown = figures(_page(world))
    assert shown["conversations"] == Shown("6", "1", "up 500%", shown["conversations"].href)
    assert shown["unique_customers"].value == "5"
    assert (shown["messages_in"].value, shown["messages_out"].value) == ("7", "8")
    assert shown["resolved_by_assistant"].value == "1"
    assert shown["handed_to_person"].value == "3"
    assert shown["containment_rate"].value == "16.7%"
    assert shown["containment_rate"].previous == "100.0%"
    assert shown["containment_rate"].change.startswith("down 83.3 points")
    assert shown["involvement_rate"].value == "50.0%"
    assert shown["first_response_seconds"].value == "33 s"  # (30 + 10 + 60) / 3
    assert shown["first_response_seconds"].previous == "45 s"
    assert shown["agent_first_response_seconds"].value == "27 min 30 s"  # (3000 + 300) / 2
    assert shown["human_first_response_seconds"].value == "40 min"
    assert shown["resolution_seconds"].value == "34 min 12 s"  # 10260 / 5 s
    assert shown["grounded_answers"].value == "3"
    assert shown["fallbacks"].value == "1"
    # Every figure of the summary is on the page, known to this page or not.
    assert set(known.EXPECTED) <= set(shown)


@pytest.mark.parametrize("figure", sorted(known.EXPECTED_DRILLDOWN))
async def test_each_figure_links_to_exactly_the_conversations_it_counts(
    world: World, figure: str
) -> None:
    href = figures(_page(world))[figure].href
    assert href is not None
    assert href.startswith("/inbox?")
    assert world.listed(href) == known.EXPECTED_DRILLDOWN[figure]
    banner = world.browser.last
    assert banner is not None
    assert 'data-testid="drill-banner"' in banner.text
    assert "Conversations behind" in banner.text


async def test_rates_and_times_link_to_the_conversations_they_are_made_of(world: World) -> None:
    shown = figures(_page(world))
    assert world.listed(shown["containment_rate"].href or "") == {"C1"}
    assert world.listed(shown["handoff_rate"].href or "") == {"C2", "C4", "C6"}
    assert (
        world.listed(shown["first_response_seconds"].href or "")
        == (known.EXPECTED_DRILLDOWN["conversations"])
    )


def _chart_link(page: str, **narrow: str) -> str:
    """The first link of the page's charts whose query narrows as ``narrow`` says."""
    for href in re.findall(r'href="(/inbox\?[^"]+)"', page):
        query = {k: v[0] for k, v in parse_qs(urlsplit(html.unescape(href)).query).items()}
        if all(query.get(k) == v for k, v in narrow.items()):
            return html.unescape(href)
    raise AssertionError(f"no link narrowed by {narrow}")


async def test_chart_points_bars_and_cells_link_to_their_conversations(world: World) -> None:
    page = _page(world)
    monday = world.history.first.isoformat()
    # The volume chart's Monday: C1, C2, C5, C6.
    assert world.listed(_chart_link(page, analytics="conversations", to=monday)) == {
        "C1",
        "C2",
        "C5",
        "C6",
    }
    # Containment on Monday: C1 alone.
    assert world.listed(_chart_link(page, analytics="resolved_by_assistant", to=monday)) == {"C1"}
    # First responses: the assistant took 10 s in C2 (10-30 s), 30 s in C1 (30-60 s);
    # people 300 s in C4 (5-15 min).
    assert world.listed(_chart_link(page, response="first_response", bucket="1")) == {"C2"}
    assert world.listed(_chart_link(page, response="first_response", bucket="2")) == {"C1"}
    assert world.listed(_chart_link(page, response="agent_first_response", bucket="4")) == {"C4"}
    # Monday 08:00-08:59 UTC: C1 and C6.
    assert world.listed(_chart_link(page, weekday="1", hour="8")) == {"C1", "C6"}
    heat = world.browser.last
    assert heat is not None
    assert "begun on a Monday, between 08:00 and 08:59" in heat.text


async def test_a_short_period_is_drawn_per_hour_and_a_long_one_per_week(world: World) -> None:
    monday = world.history.first
    one_day = world.browser.get(
        f"/analytics?{urlencode({'from': monday, 'to': monday, 'timezone': 'UTC'})}"
    ).text
    assert "conversations per hour" in one_day
    assert world.listed(_chart_link(one_day, analytics="conversations", hour="8")) == {"C1", "C6"}
    start = monday - timedelta(days=100)
    long = world.browser.get(
        f"/analytics?{urlencode({'from': start, 'to': world.history.last, 'timezone': 'UTC'})}"
    ).text
    assert "conversations per week" in long
    week = _chart_link(long, analytics="conversations", **{"from": monday.isoformat()})
    assert parse_qs(urlsplit(week).query)["to"] == [(monday + timedelta(days=6)).isoformat()]
    assert world.listed(week) == {"C1", "C2", "C4", "C5", "C6"}


async def test_filters_narrow_the_figures_and_their_links(world: World) -> None:
    shown = figures(_page(world, assistant_id=str(world.history.assistant_b)))
    assert shown["conversations"].value == "1"
    assert world.listed(shown["conversations"].href or "") == {"C3"}
    webchat = figures(_page(world, channel="webchat"))
    assert webchat["conversations"].value == "2"
    assert world.listed(webchat["handed_to_person"].href or "") == {"C2", "C6"}


async def test_presets_and_the_default_period_are_in_the_timezone(world: World) -> None:
    page = world.browser.get("/analytics?range=7&timezone=UTC")
    assert page.status_code == 200
    today = datetime.now(UTC).date()
    assert f'name="from" value="{today - timedelta(days=6)}"' in page.text
    assert f'name="to" value="{today}"' in page.text
    # Without a zone, the organisation's: its assistants' business hours keep Asia/Dubai.
    default = world.browser.get("/analytics")
    assert 'name="timezone" value="Asia/Dubai"' in default.text
    assert 'data-testid="preset-28" aria-current="true"' not in default.text  # attribute order
    assert 'aria-current="true" data-testid="preset-28"' in default.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "yesterday"}, "Dates are like"),
        ({"from": "2026-05-01", "to": "2026-04-01"}, "ends before it starts"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "at most 366 days"),
        ({"timezone": "Mars/Olympus"}, "not a time zone we know"),
        ({"channel": "fax"}, "Choose one of the channels"),
        ({"assistant_id": "nope"}, "Choose one of the assistants"),
        ({"assistant_id": "00000000-0000-0000-0000-000000000001"}, "not one of yours"),
        ({"range": "5"}, "Showing the last 28 days"),
    ],
)
async def test_invalid_input_gives_a_message_and_the_default_period(
    world: World, query: dict[str, str], message: str
) -> None:
    page = world.browser.get(f"/analytics?{urlencode(query)}")
    assert page.status_code == 200, page.text
    assert message in html.unescape(page.text)
    assert 'role="alert"' in page.text
    assert 'data-figure="conversations"' in page.text


async def test_a_drilldown_the_inbox_cannot_read_is_a_readable_error(world: World) -> None:
    for query in (
        "analytics=nothing&from=2026-01-01&to=2026-01-02",
        "analytics=conversations",
        "analytics=conversations&from=2026-01-01&to=2026-01-02&weekday=9",
        "analytics=conversations&from=2026-01-01&to=2026-01-02&response=x&bucket=1",
    ):
        page = world.browser.get(f"/inbox?{query}")
        assert page.status_code == 422, query
        assert "<h1" in page.text


async def test_the_csv_link_downloads_with_the_session(world: World) -> None:
    page = _page(world, channel="webchat")
    href = html.unescape(re.search(r'href="([^"]+)" data-testid="csv-export"', page)[1])  # type: ignore[index]
    download = world.browser.get(href)
    assert download.status_code == 200, download.text
    assert download.headers["content-type"].startswith("text/csv")
    found = list(csv.DictReader(io.StringIO(download.text)))
    assert {row["conversation_id"] for row in found} == {
        str(world.history.conversations[name]) for name in ("C2", "C6")
    }


async def test_a_new_organisation_sees_an_empty_state(
    live_server: LiveServer, database: Database
) -> None:
    _, owner = await make_organisation(database, name="Brand new")
    with signed_in(live_server.url, owner) as browser:
        page = browser.get("/analytics")
        assert page.status_code == 200, page.text
        assert 'data-testid="analytics-empty"' in page.text
        assert "No conversations yet" in page.text
        assert 'href="/analytics"' in page.text  # in the navigation
