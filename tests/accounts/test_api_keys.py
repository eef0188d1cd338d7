"""API keys: shown once, stored as a hash, limited to a role, revocable at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from cybergine.accounts.models import ApiKey, Role
from cybergine.accounts.service import organisations
from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, add_member, make_api_key, make_organisation
from tests.support.server import LiveServer


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_a_key_is_shown_once_and_stored_only_as_a_hash(
    live_server: LiveServer, database: Database
) -> None:
    organisation, _ = await make_organisation(database)
    owner_key = await make_api_key(database, organisation.id, Role.OWNER)
    with live_server.client(headers=_bearer(owner_key)) as api:
        created = api.post("/api/v1/api-keys", json={"name": "Catalogue sync", "role": "agent"})
        assert created.status_code == 201
        body = created.json()
        secret = body["key"]
        assert secret.startswith(f"cg_{body['prefix']}_")
        listed = api.get("/api/v1/api-keys").json()
    assert all("key" not in item for item in listed)
    assert {item["prefix"] for item in listed} >= {body["prefix"]}
    async with database.transaction() as session:
        dump = (
            (await session.execute(text("SELECT row_to_json(k)::text FROM api_keys k")))
            .scalars()
            .all()
        )
    assert not any(secret in row or secret.split("_", 2)[2] in row for row in dump)


async def test_a_key_works_until_revoked_and_not_a_moment_after(
    live_server: LiveServer, database: Database
) -> None:
    organisation, _ = await make_organisation(database)
    owner_key = await make_api_key(database, organisation.id, Role.OWNER)
    with live_server.client(headers=_bearer(owner_key)) as api:
        created = api.post("/api/v1/api-keys", json={"name": "temp", "role": "viewer"}).json()
    with live_server.client(headers=_bearer(created["key"])) as temp:
        assert temp.get("/api/v1/organisation").status_code == 200
    with live_server.client(headers=_bearer(owner_key)) as api:
        revoked = api.delete(f"/api/v1/api-keys/{created['id']}")
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
    with live_server.client(headers=_bearer(created["key"])) as temp:
        refused = temp.get("/api/v1/organisation")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.headers["content-type"] == "application/problem+json"
    async with database.transaction() as session:
        actions = set((await session.execute(select(AuditEvent.action))).scalars())
    assert {"api_key.created", "api_key.revoked"} <= actions


async def test_last_used_time_is_recorded(live_server: LiveServer, database: Database) -> None:
    organisation, _ = await make_organisation(database)
    key = await make_api_key(database, organisation.id, Role.VIEWER)
    with live_server.client(headers=_bearer(key)) as api:
        api.get("/api/v1/organisation")
    async with database.transaction() as session:
        used = (await session.execute(select(ApiKey.last_used_at))).scalar_one()
    assert used is not None


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer cg_nope_nope",
        "Bearer not-a-key",
        "Bearer " + "x" * 5000,
    ],
)
def test_malformed_or_unknown_keys_get_401(live_server: LiveServer, header: str) -> None:
    with live_server.client(headers={"authorization": header}) as api:
        response = api.get("/api/v1/organisation")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_api_without_credentials_gets_401_not_a_redirect(live_server: LiveServer) -> None:
    with live_server.client() as api:
        response = api.get("/api/v1/members")
    assert response.status_code == 401


async def test_a_key_acts_with_its_role(live_server: LiveServer, database: Database) -> None:
    organisation, _ = await make_organisation(database)
    viewer_key = await make_api_key(database, organisation.id, Role.VIEWER)
    admin_key = await make_api_key(database, organisation.id, Role.ADMIN)
    with live_server.client(headers=_bearer(viewer_key)) as api:
        assert api.get("/api/v1/members").status_code == 200
        denied = api.post("/api/v1/api-keys", json={"name": "escalate", "role": "owner"})
        assert denied.status_code == 403
    with live_server.client(headers=_bearer(admin_key)) as api:
        above = api.post("/api/v1/api-keys", json={"name": "escalate", "role": "owner"})
        assert above.status_code == 403
        assert api.post("/api/v1/api-keys", json={"name": "ok", "role": "admin"}).status_code == 201
    async with database.transaction() as session:
        denial = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "auth.permission.denied")
        )
    assert denial is not None
    assert denial.actor_type == "api_key"


async def test_keys_stop_working_when_the_organisation_is_deleted(
    live_server: LiveServer, database: Database
) -> None:
    organisation, _ = await make_organisation(database)
    key = await make_api_key(database, organisation.id, Role.OWNER)
    async with database.transaction() as session:
        await organisations.schedule_deletion(session, organisation.id, grace=timedelta(days=30))
    with live_server.client(headers=_bearer(key)) as api:
        assert api.get("/api/v1/organisation").status_code == 401


async def test_keys_page_shows_a_new_key_once(browser: Browser, database: Database) -> None:
    _organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    created = browser.post(
        "/settings/api-keys", {"name": "Zapier", "role": "agent"}, csrf_from="/settings/api-keys"
    )
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    assert "Copy it now" in created.text
    page = browser.get("/settings/api-keys")
    assert "Zapier" in page.text
    assert "Copy it now" not in page.text


async def test_agents_cannot_reach_the_keys_page(browser: Browser, database: Database) -> None:
    organisation, _ = await make_organisation(database)
    agent, _ = await add_member(database, organisation.id, Role.AGENT)
    browser.sign_in(agent.email, PASSWORD)
    assert browser.get("/settings/api-keys").status_code == 403
