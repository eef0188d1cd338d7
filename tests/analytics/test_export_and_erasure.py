"""The CSV export: one row per conversation begun in the period, with the figures of
the definitions, streamed; and erasing a customer leaves no trace of them in anything
analytics keeps, while the aggregates still count their conversations."""

from __future__ import annotations

import csv
import io

from sqlalchemy import text

from cybergine.conversations.models import Conversation, Customer
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.privacy.erasure import erase_customer
from tests.analytics.conftest import Seeded, refresh
from tests.analytics.test_rollups import TABLES


def _rows(seeded: Seeded, **params: str) -> list[dict[str, str]]:
    with seeded.api.stream(
        "GET", "/api/v1/analytics/conversations.csv", params=seeded.period(**params)
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        body = "".join(response.iter_text())
    return list(csv.DictReader(io.StringIO(body)))


def test_the_export_has_one_row_per_conversation_with_its_figures(seeded: Seeded) -> None:
    rows = _rows(seeded)
    names = {str(id): name for name, id in seeded.known.conversations.items()}
    by_name = {names[row["conversation_id"]]: row for row in rows}
    assert sorted(by_name) == ["C1", "C2", "C3", "C4", "C5", "C6"]
    assert [row["started_at"] for row in rows] == sorted(row["started_at"] for row in rows)
    c1 = by_name["C1"]
    assert (c1["messages_in"], c1["messages_out"], c1["grounded_answers"], c1["fallbacks"]) == (
        "2",
        "2",
        "1",
        "1",
    )
    assert c1["resolved_by_assistant"] == "true"
    assert float(c1["first_response_seconds"]) == 30
    assert float(c1["resolution_business_seconds"]) == 3600
    assert (c1["prompt_tokens"], c1["completion_tokens"]) == ("150", "30")
    c2 = by_name["C2"]
    assert c2["handoff_reason"] == "customer_request"
    assert float(c2["human_first_response_seconds"]) == 2400
    assert float(c2["human_first_response_business_seconds"]) == 1200
    assert by_name["C6"]["handoff_reason"] == "other"  # never the reason's own words
    assert by_name["C3"]["first_response_business_seconds"] == ""  # B keeps no hours
    # The export names no customer.
    assert "customer_id" not in rows[0]


def test_the_export_follows_the_filters(seeded: Seeded) -> None:
    rows = _rows(seeded, channel="webchat")
    names = {str(id): name for name, id in seeded.known.conversations.items()}
    assert {names[row["conversation_id"]] for row in rows} == {"C2", "C6"}


async def test_an_erased_customer_leaves_nothing_in_analytics(
    seeded: Seeded, database: Database
) -> None:
    async with database.transaction() as session:
        c1 = await session.get_one(Conversation, seeded.known.conversations["C1"])
        customer = await session.get_one(Customer, c1.customer_id)
        traces = {str(customer.id), customer.external_id, str(customer.display_name)}
        await erase_customer(TenantScope(session, seeded.known.organisation_id), None, customer.id)
    await refresh(database, seeded.known)
    async with database.transaction() as session:
        for table in (*TABLES, "analytics_refresh_marks"):
            kept = await session.scalars(text(f"SELECT to_jsonb(t)::text FROM {table} t"))
            for row in kept:
                assert not any(trace in row for trace in traces), table
    figures = seeded.api.get("/api/v1/analytics/summary", params=seeded.period()).json()["figures"]
    assert figures["conversations"]["value"] == 6  # still counted, by no one's name
