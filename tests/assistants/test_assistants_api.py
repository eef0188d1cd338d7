"""Assistants through their API: configuration, validation, the write-only LLM key, the
AI disclosure that can never be emptied, roles, and the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from cybergine.accounts.models import Role
from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from cybergine.settings import Settings
from tests.support.factories import make_api_key, make_organisation_with_key
from tests.support.server import LiveServer

SECRET_KEY = "sk-test-very-secret-0123456789"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The operator runs a model server on this machine (Ollama's port) and allows it.
    return settings.model_copy(update={"outbound_allowed_hosts": "127.0.0.1:11434"})


@pytest.fixture
async def api(live_server: LiveServer, database: Database) -> Iterator[httpx.Client]:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as client:
        yield client


def _create(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/api/v1/assistants", json={"name": "Mia", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _names_field(response: httpx.Response, field: str) -> bool:
    problem = response.json()
    if problem.get("field") == field:
        return True
    return any(field in error["location"] for error in problem.get("errors", []))


async def test_create_list_get_patch_delete(api: httpx.Client) -> None:
    created = _create(
        api,
        persona="Mia, the shop's stylist.",
        instructions="Recommend products from the catalogue.",
        tone="friendly",
        languages=["EN", "fr", "pt-br"],
        knowledge_collections=["faq", " policies "],
        handoff_keywords=["refund now", "Refund now", "lawyer"],
        business_hours={
            "timezone": "Europe/Paris",
            "days": {"tue": [["14:00", "18:00"], ["09:00", "12:00"]], "mon": [["09:00", "18:00"]]},
        },
    )
    assert created["name"] == "Mia"
    assert created["tone"] == "friendly"
    assert created["languages"] == ["en", "fr", "pt-BR"]
    assert created["knowledge_collections"] == ["faq", "policies"]
    assert created["handoff_keywords"] == ["refund now", "lawyer"]
    assert created["business_hours"] == {
        "timezone": "Europe/Paris",
        "days": {"mon": [["09:00", "18:00"]], "tue": [["09:00", "12:00"], ["14:00", "18:00"]]},
    }
    # Defaults.
    assert created["llm_provider"] == "extractive"
    assert created["llm_model"] == "gpt-4o-mini"
    assert created["llm_base_url"] is None
    assert created["has_llm_api_key"] is False
    assert created["temperature"] == 0.2
    assert created["max_tokens"] == 500
    assert created["redact_personal_data"] is True
    assert created["active"] is True
    assert created["greeting"] == ""
    assert created["ai_disclosure"].startswith("You're chatting with an AI assistant")
    assert "person" in created["fallback_message"]

    bare = _create(api, name="Alex")
    assert bare["languages"] == ["en"]
    assert bare["business_hours"] is None
    assert bare["tone"] == "professional"

    listed = api.get("/api/v1/assistants")
    assert listed.status_code == 200
    assert [a["name"] for a in listed.json()] == ["Alex", "Mia"]

    fetched = api.get(f"/api/v1/assistants/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created

    patched = api.patch(
        f"/api/v1/assistants/{created['id']}",
        json={"greeting": "Hi! How can I help?", "temperature": 0.7, "business_hours": None},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["greeting"] == "Hi! How can I help?"
    assert body["temperature"] == 0.7
    assert body["business_hours"] is None
    # Fields not sent are untouched.
    assert body["persona"] == "Mia, the shop's stylist."
    assert body["languages"] == ["en", "fr", "pt-BR"]

    assert api.delete(f"/api/v1/assistants/{created['id']}").status_code == 204
    assert api.get(f"/api/v1/assistants/{created['id']}").status_code == 404
    assert api.delete(f"/api/v1/assistants/{created['id']}").status_code == 404
    assert [a["name"] for a in api.get("/api/v1/assistants").json()] == ["Alex"]


async def test_the_llm_key_is_stored_encrypted_and_never_returned(
    api: httpx.Client, database: Database
) -> None:
    created = api.post(
        "/api/v1/assistants",
        json={
            "name": "Mia",
            "llm_provider": "openai",
            "llm_base_url": "http://127.0.0.1:11434/v1/",
            "llm_api_key": SECRET_KEY,
        },
    )
    assert created.status_code == 201, created.text
    assert SECRET_KEY not in created.text
    assert "llm_api_key" not in created.json()
    assert created.json()["has_llm_api_key"] is True
    assert created.json()["llm_base_url"] == "http://127.0.0.1:11434/v1"
    assistant_id = created.json()["id"]
    for response in (
        api.get("/api/v1/assistants"),
        api.get(f"/api/v1/assistants/{assistant_id}"),
        api.patch(f"/api/v1/assistants/{assistant_id}", json={"llm_model": "gpt-4o"}),
    ):
        assert response.status_code == 200
        assert SECRET_KEY not in response.text
        assert "sk-test" not in response.text

    async with database.transaction() as session:
        raw = (await session.execute(text("SELECT llm_api_key FROM assistants"))).scalar_one()
        dump = (
            await session.execute(text("SELECT row_to_json(a)::text FROM assistants a"))
        ).scalar_one()
    assert raw is not None
    assert SECRET_KEY not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    assert SECRET_KEY not in dump

    # A new key replaces it; null removes it.
    replaced = api.patch(f"/api/v1/assistants/{assistant_id}", json={"llm_api_key": "sk-other"})
    assert replaced.json()["has_llm_api_key"] is True
    async with database.transaction() as session:
        again = (await session.execute(text("SELECT llm_api_key FROM assistants"))).scalar_one()
    assert again != raw
    assert "sk-other" not in again
    # (With the base URL: a URL of the assistant's own needs a key of its own.)
    removed = api.patch(
        f"/api/v1/assistants/{assistant_id}", json={"llm_api_key": None, "llm_base_url": None}
    )
    assert removed.status_code == 200
    assert removed.json()["has_llm_api_key"] is False
    async with database.transaction() as session:
        cleared = (await session.execute(text("SELECT llm_api_key FROM assistants"))).scalar_one()
    assert cleared is None


async def test_the_ai_disclosure_can_be_reworded_but_never_emptied(api: httpx.Client) -> None:
    created = _create(api, ai_disclosure="I'm Mia, an automated assistant.")
    assert created["ai_disclosure"] == "I'm Mia, an automated assistant."
    url = f"/api/v1/assistants/{created['id']}"
    for value in ("", "   ", None):
        refused = api.patch(url, json={"ai_disclosure": value})
        assert refused.status_code == 422, value
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["field"] == "ai_disclosure"
        assert "policy" in refused.json()["detail"]
    assert (
        api.post("/api/v1/assistants", json={"name": "B", "ai_disclosure": ""}).status_code == 422
    )
    empty_fallback = api.patch(url, json={"fallback_message": " "})
    assert empty_fallback.status_code == 422
    assert empty_fallback.json()["field"] == "fallback_message"
    assert api.get(url).json()["ai_disclosure"] == "I'm Mia, an automated assistant."


async def test_names_are_unique_per_organisation(
    api: httpx.Client, database: Database, live_server: LiveServer
) -> None:
    _create(api)
    duplicate = api.post("/api/v1/assistants", json={"name": "  Mia "})
    assert duplicate.status_code == 409
    assert duplicate.json()["field"] == "name"
    other = _create(api, name="Other")
    renamed = api.patch(f"/api/v1/assistants/{other['id']}", json={"name": "Mia"})
    assert renamed.status_code == 409
    assert api.get(f"/api/v1/assistants/{other['id']}").json()["name"] == "Other"
    # Renaming to its own name is no conflict.
    assert api.patch(f"/api/v1/assistants/{other['id']}", json={"name": "Other"}).status_code == 200

    _, other_key = await make_organisation_with_key(database, name="Elsewhere")
    with live_server.client(headers={"authorization": f"Bearer {other_key}"}) as elsewhere:
        assert elsewhere.post("/api/v1/assistants", json={"name": "Mia"}).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"languages": ["english"]}, "languages"),
        ({"languages": ["en", "fr_FR"]}, "languages"),
        ({"languages": []}, "languages"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 5000}, "max_tokens"),
        ({"tone": "sarcastic"}, "tone"),
        ({"llm_provider": "skynet"}, "llm_provider"),
        ({"llm_base_url": "ftp://example.com"}, "llm_base_url"),
        ({"llm_api_key": ""}, "llm_api_key"),
        ({"business_hours": {"timezone": "Mars/Olympus", "days": {}}}, "business_hours"),
        (
            {"business_hours": {"timezone": "Europe/Paris", "days": {"funday": []}}},
            "business_hours",
        ),
        (
            {"business_hours": {"timezone": "Europe/Paris", "days": {"mon": [["9am", "5pm"]]}}},
            "business_hours",
        ),
        (
            {"business_hours": {"timezone": "Europe/Paris", "days": {"mon": [["18:00", "09:00"]]}}},
            "business_hours",
        ),
        (
            {
                "business_hours": {
                    "timezone": "Europe/Paris",
                    "days": {"mon": [["09:00", "13:00"], ["12:00", "18:00"]]},
                }
            },
            "business_hours",
        ),
        ({"knowledge_collections": [""]}, "knowledge_collections"),
        ({"persona": None}, "persona"),
        ({"has_llm_api_key": True}, "has_llm_api_key"),
    ],
)
async def test_invalid_settings_are_refused_naming_the_field(
    api: httpx.Client, body: dict[str, Any], field: str
) -> None:
    created = api.post("/api/v1/assistants", json={"name": "Mia", **body})
    assert created.status_code == 422, created.text
    assert _names_field(created, field), created.text
    existing = api.get("/api/v1/assistants").json()
    if not existing:
        existing = [_create(api, name="Valid")]
    patched = api.patch(f"/api/v1/assistants/{existing[0]['id']}", json=body)
    assert patched.status_code == 422, patched.text
    assert _names_field(patched, field), patched.text


async def test_a_viewer_reads_but_cannot_write(
    api: httpx.Client, database: Database, live_server: LiveServer
) -> None:
    created = _create(api)
    organisation_id = await _organisation_of(database, created["id"])
    viewer_key = await make_api_key(database, organisation_id, Role.VIEWER)
    with live_server.client(headers={"authorization": f"Bearer {viewer_key}"}) as viewer:
        assert viewer.get("/api/v1/assistants").status_code == 200
        assert viewer.get(f"/api/v1/assistants/{created['id']}").status_code == 200
        assert viewer.post("/api/v1/assistants", json={"name": "Nope"}).status_code == 403
        assert (
            viewer.patch(f"/api/v1/assistants/{created['id']}", json={"name": "Nope"}).status_code
            == 403
        )
        assert viewer.delete(f"/api/v1/assistants/{created['id']}").status_code == 403
    assert api.get(f"/api/v1/assistants/{created['id']}").json()["name"] == "Mia"
    assert len(api.get("/api/v1/assistants").json()) == 1


async def _organisation_of(database: Database, assistant_id: str) -> Any:
    async with database.transaction() as session:
        return (
            await session.execute(
                text("SELECT organisation_id FROM assistants WHERE id = :id"), {"id": assistant_id}
            )
        ).scalar_one()


async def test_changes_are_audited_by_field_name_without_the_secret(
    api: httpx.Client, database: Database
) -> None:
    created = _create(api, llm_api_key=SECRET_KEY, tone="concise")
    url = f"/api/v1/assistants/{created['id']}"
    api.patch(url, json={"llm_api_key": "sk-second-secret", "greeting": "Hello", "tone": "concise"})
    api.patch(url, json={"greeting": "Hello"})  # no change: nothing to audit
    api.delete(url)

    async with database.transaction() as session:
        events = list(
            (
                await session.execute(
                    select(AuditEvent)
                    .where(AuditEvent.action.like("assistant.%"))
                    .order_by(AuditEvent.seq)
                )
            ).scalars()
        )
    assert [e.action for e in events] == [
        "assistant.created",
        "assistant.updated",
        "assistant.deleted",
    ]
    assert all(e.target_type == "assistant" and e.target_id == created["id"] for e in events)
    assert all(e.actor_type == "api_key" for e in events)
    created_event, updated_event, _ = events
    assert created_event.details["name"] == "Mia"
    assert set(created_event.details["fields"]) == {"name", "llm_api_key", "tone"}
    assert updated_event.details == {"fields": ["greeting", "llm_api_key"]}
    everything = json.dumps([e.details for e in events])
    assert SECRET_KEY not in everything
    assert "sk-second-secret" not in everything


async def test_the_widget_settings(api: httpx.Client) -> None:
    created = _create(api)
    assert created["widget_key"].startswith("wk_")
    assert created["allowed_origins"] == []
    assert created["widget"] == {}
    other = _create(api, name="Alex")
    assert other["widget_key"] != created["widget_key"]

    patched = api.patch(
        f"/api/v1/assistants/{created['id']}",
        json={
            "allowed_origins": [
                "https://Shop.Example/",
                "http://localhost:3000",
                "https://shop.example",
            ],
            "widget": {
                "colour": "#FF6600",
                "position": "left",
                "title": "Ask Mia",
                "ask_consent": True,
                "privacy_notice_url": "https://shop.example/pages/privacy",
            },
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["allowed_origins"] == ["https://shop.example", "http://localhost:3000"]
    assert body["widget"] == {
        "colour": "#ff6600",
        "position": "left",
        "title": "Ask Mia",
        "ask_consent": True,
        "privacy_notice_url": "https://shop.example/pages/privacy",
    }
    assert body["widget_key"] == created["widget_key"]  # stable: it is in shops' pages

    for bad in (
        {"allowed_origins": ["https://*.example.com"]},
        {"allowed_origins": ["https://shop.example/path"]},
        {"allowed_origins": ["ftp://shop.example"]},
        {"allowed_origins": ["shop.example"]},
        {"widget": {"colour": "red"}},
        {"widget": {"position": "top"}},
        {"widget": {"avatar_url": "javascript:alert(1)"}},
        {"widget": {"font": "Comic Sans"}},
        {"widget": {"privacy_notice_url": "http://shop.example/privacy"}},
        {"widget": {"privacy_notice_url": "https://user:pw@shop.example/privacy"}},
        {"widget": {"privacy_notice_url": "https://[::1/privacy"}},
        {"widget": {"privacy_notice_url": "/privacy"}},
    ):
        response = api.patch(f"/api/v1/assistants/{created['id']}", json=bad)
        assert response.status_code == 422, bad
        assert _names_field(response, next(iter(bad))), response.json()
