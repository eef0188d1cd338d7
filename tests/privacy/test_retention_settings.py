"""An organisation's conversation retention period, over real HTTP: the API and the
dashboard's settings page set the same value, bounds are refused readably (problem+json
in the API), only those who may change settings can, and each change is audited."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from cybergine.accounts.models import Role
from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from cybergine.privacy.retention import CONVERSATION_DAYS_MAX, CONVERSATION_DAYS_MIN
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, make_api_key, make_organisation

PROBLEM = "application/problem+json"
ROUTE = "/api/v1/organisation/retention"


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", "accept": "application/json"}


async def _changes(database: Database, organisation_id: uuid.UUID) -> list[dict[str, object]]:
    async with database.transaction() as session:
        found = await session.scalars(
            select(AuditEvent.details)
            .where(
                AuditEvent.organisation_id == organisation_id,
                AuditEvent.action == "organisation.retention.changed",
            )
            .order_by(AuditEvent.seq)
        )
        return list(found)


async def test_the_api_sets_and_clears_the_period_and_audits_each_change(
    browser: Browser, database: Database
) -> None:
    shop, _ = await make_organisation(database)
    other, _ = await make_organisation(database, name="Other")
    key = await make_api_key(database, shop.id, Role.ADMIN)
    other_key = await make_api_key(database, other.id, Role.ADMIN)
    http = browser.http

    default = http.get(ROUTE, headers=_bearer(key))
    assert default.status_code == 200
    assert default.json() == {"conversation_days": None}  # kept while the account is active

    for days in (90, 90, CONVERSATION_DAYS_MIN, None):
        changed = http.put(ROUTE, json={"conversation_days": days}, headers=_bearer(key))
        assert changed.status_code == 200, changed.text
        assert changed.json() == {"conversation_days": days}
        assert http.get(ROUTE, headers=_bearer(key)).json() == {"conversation_days": days}

    # Setting the same value again is no change: three entries, not four.
    assert await _changes(database, shop.id) == [
        {"field": "conversation_days", "from": None, "to": 90},
        {"field": "conversation_days", "from": 90, "to": CONVERSATION_DAYS_MIN},
        {"field": "conversation_days", "from": CONVERSATION_DAYS_MIN, "to": None},
    ]
    # Another organisation's setting is its own.
    assert http.get(ROUTE, headers=_bearer(other_key)).json() == {"conversation_days": None}


@pytest.mark.parametrize(
    "body",
    [
        {"conversation_days": 0},
        {"conversation_days": -5},
        {"conversation_days": CONVERSATION_DAYS_MAX + 1},
        {"conversation_days": 2**70},
        {"conversation_days": "forever"},
        {"conversation_days": 1.5},
        {"conversation_days": 30, "audit_days": 1},
        {},
    ],
)
async def test_bad_periods_are_problems(
    browser: Browser, database: Database, body: dict[str, object]
) -> None:
    shop, _ = await make_organisation(database)
    key = await make_api_key(database, shop.id, Role.OWNER)
    response = browser.http.put(ROUTE, json=body, headers=_bearer(key))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert browser.http.get(ROUTE, headers=_bearer(key)).json() == {"conversation_days": None}
    assert await _changes(database, shop.id) == []


async def test_only_those_who_change_settings_may_change_it(
    browser: Browser, database: Database
) -> None:
    shop, _ = await make_organisation(database)
    agent = await make_api_key(database, shop.id, Role.AGENT)
    assert browser.http.get(ROUTE, headers=_bearer(agent)).status_code == 200
    refused = browser.http.put(ROUTE, json={"conversation_days": 30}, headers=_bearer(agent))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    assert browser.http.put(ROUTE, json={"conversation_days": 30}).status_code == 401


async def test_the_settings_page_sets_the_same_period(browser: Browser, database: Database) -> None:
    shop, owner = await make_organisation(database)
    key = await make_api_key(database, shop.id, Role.OWNER)
    assert browser.sign_in(owner.email, PASSWORD).status_code == 303
    assert 'href="/settings/retention"' in browser.get("/settings").text

    page = browser.get("/settings/retention")
    assert page.status_code == 200
    assert "kept while your account is active" in page.text

    saved = browser.post(
        "/settings/retention", {"conversation_days": "45"}, csrf_from="/settings/retention"
    )
    assert saved.status_code == 303
    assert browser.http.get(ROUTE, headers=_bearer(key)).json() == {"conversation_days": 45}
    assert "<strong>45 days</strong>" in browser.get("/settings/retention").text

    for typed, message in (
        ("0", f"{CONVERSATION_DAYS_MIN} to {CONVERSATION_DAYS_MAX} days"),
        ("ninety", "Type a whole number of days"),
        ("٣٠", "Type a whole number of days"),  # digits, but not ones we read
    ):
        refused = browser.post(
            "/settings/retention", {"conversation_days": typed}, csrf_from="/settings/retention"
        )
        assert refused.status_code == 422, typed
        assert message in refused.text, typed
        assert f'value="{typed}"' in refused.text  # what they typed, to correct

    cleared = browser.post(
        "/settings/retention", {"conversation_days": ""}, csrf_from="/settings/retention"
    )
    assert cleared.status_code == 303
    assert browser.http.get(ROUTE, headers=_bearer(key)).json() == {"conversation_days": None}
    assert [change["to"] for change in await _changes(database, shop.id)] == [45, None]
