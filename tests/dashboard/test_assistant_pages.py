"""Assistants in the dashboard, over real HTTP: created and edited field by field with the
result read back through the API, errors shown next to the field they concern with nothing
saved, the model key written but never shown, viewers kept to reading, and deletion."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cybergine.accounts.models import Role
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge import service as knowledge
from cybergine.privacy.audit import AuditEvent
from cybergine.settings import Settings
from tests.support.browser import Browser
from tests.support.conversations import make_whatsapp_number
from tests.support.factories import PASSWORD, add_member, make_api_key, make_organisation
from tests.support.server import LiveServer

SECRET_KEY = "sk-dashboard-very-secret-0123456789"


@dataclass
class Shop:
    organisation_id: uuid.UUID
    owner: Browser
    api: httpx.Client


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The operator runs a model server on this machine (Ollama's port) and allows it.
    return settings.model_copy(update={"outbound_allowed_hosts": "127.0.0.1:11434"})


@pytest.fixture
async def shop(
    live_server: LiveServer, database: Database, browser: Browser
) -> AsyncIterator[Shop]:
    organisation, owner = await make_organisation(database, name="Corner Shop")
    key = await make_api_key(database, organisation.id)
    async with database.transaction() as session:
        scope = TenantScope(session, organisation.id)
        for collection in ("faq", "returns"):
            await knowledge.create_qa(
                scope, question=f"A {collection} question?", answer="Yes.", collection=collection
            )
    assert browser.sign_in(owner.email, PASSWORD).status_code == 303
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        yield Shop(organisation.id, browser, api)


def full_form(**overrides: Any) -> dict[str, Any]:
    """What a browser sends for a new assistant's form left as it is (ticked boxes only)."""
    form: dict[str, Any] = {
        "name": "Mia",
        "active": "on",
        "languages": "en",
        "persona": "",
        "tone": "professional",
        "instructions": "",
        "greeting": "",
        "fallback_message": "I'm not sure about that.",
        "ai_disclosure": "You're chatting with an AI assistant.",
        "llm_provider": "extractive",
        "llm_model": "gpt-4o-mini",
        "llm_base_url": "",
        "llm_api_key": "",
        "temperature": "0.2",
        "max_tokens": "500",
        "redact_personal_data": "on",
        "hours_mode": "always",
        "timezone": "UTC",
        **{f"hours_{day}": "" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "handoff_keywords": "",
    }
    for name, value in overrides.items():
        if value is None:
            form.pop(name, None)
        else:
            form[name] = value
    return form


def post_form(browser: Browser, path: str, form: dict[str, Any], csrf_from: str) -> httpx.Response:
    """The form as a browser posts it (repeated fields for several ticked boxes)."""
    token = browser.csrf(csrf_from)
    browser.last = browser.http.post(path, data={**form, "csrf_token": token})
    return browser.last


def create(shop: Shop, **overrides: Any) -> str:
    response = post_form(shop.owner, "/assistants", full_form(**overrides), "/assistants/new")
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/assistants/[0-9a-f-]{36}\?notice=assistant-created", location)
    return location.split("?")[0].rsplit("/", 1)[1]


def opening_tag(page: str, element_id: str) -> str:
    match = re.search(rf'<(?:input|textarea|select)\b[^>]*\bid="{element_id}"[^>]*>', page)
    assert match, f"no control #{element_id}"
    return match.group(0)


def assert_error_next_to(page: str, field: str, control_id: str | None = None) -> str:
    """The field's message is on the page, and its control points at it."""
    message = re.search(rf'<p class="field-error" id="{field}-error">([^<]+)</p>', page)
    assert message, f"no error for {field}"
    tag = opening_tag(page, control_id or f"f-{field}")
    assert 'aria-invalid="true"' in tag
    assert f"{field}-error" in re.search(r'aria-describedby="([^"]+)"', tag).group(1)  # type: ignore[union-attr]
    return html.unescape(message.group(1))


async def test_an_empty_list_explains_what_an_assistant_is(shop: Shop) -> None:
    page = shop.owner.get("/assistants")
    assert page.status_code == 200
    assert "No assistant yet" in page.text
    assert "answers your customers for you" in page.text
    assert 'href="/assistants/new"' in page.text


async def test_create_then_edit_every_field_and_read_it_back(
    shop: Shop, database: Database
) -> None:
    new = shop.owner.get("/assistants/new")
    assert new.status_code == 200
    # The new form starts from the service's defaults.
    assert "You&#39;re chatting with an AI assistant" in new.text
    assistant_id = create(shop, name="Mia")
    page = shop.owner.get(f"/assistants/{assistant_id}?notice=assistant-created")
    assert "Assistant created." in page.text
    assert 'value="Mia"' in page.text
    assert f'href="/channels/widget/{assistant_id}"' in page.text

    form = full_form(
        name="Mia the stylist",
        persona="Mia, the shop's friendly stylist.",
        tone="playful",
        instructions="Never promise a delivery date.",
        languages="EN, fr pt-br",
        greeting="Hello! Ask me about sizes.",
        fallback_message="No idea, sorry. A person can help.",
        ai_disclosure="I am an AI; ask for a person any time.",
        knowledge_collections=["returns"],
        llm_provider="openai",
        llm_model="llama3.1",
        llm_base_url="http://127.0.0.1:11434/v1",
        llm_api_key=SECRET_KEY,
        temperature="0,7",
        max_tokens="800",
        redact_personal_data=None,
        active=None,
        hours_mode="scheduled",
        timezone="Europe/Paris",
        hours_mon="9:00-12:00, 14:00-18:00",
        hours_tue="09:00 to 18:00",
        handoff_keywords="refund now\nlawyer\n\n",
    )
    saved = post_form(
        shop.owner, f"/assistants/{assistant_id}", form, f"/assistants/{assistant_id}"
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"/assistants/{assistant_id}?notice=assistant-saved"

    got = shop.api.get(f"/api/v1/assistants/{assistant_id}").json()
    assert got["name"] == "Mia the stylist"
    assert got["persona"] == "Mia, the shop's friendly stylist."
    assert got["tone"] == "playful"
    assert got["instructions"] == "Never promise a delivery date."
    assert got["languages"] == ["en", "fr", "pt-BR"]
    assert got["greeting"] == "Hello! Ask me about sizes."
    assert got["fallback_message"] == "No idea, sorry. A person can help."
    assert got["ai_disclosure"] == "I am an AI; ask for a person any time."
    assert got["knowledge_collections"] == ["returns"]
    assert got["llm_provider"] == "openai"
    assert got["llm_model"] == "llama3.1"
    assert got["llm_base_url"] == "http://127.0.0.1:11434/v1"
    assert got["has_llm_api_key"] is True
    assert got["temperature"] == 0.7
    assert got["max_tokens"] == 800
    assert got["redact_personal_data"] is False
    assert got["active"] is False
    assert got["business_hours"] == {
        "timezone": "Europe/Paris",
        "days": {"mon": [["09:00", "12:00"], ["14:00", "18:00"]], "tue": [["09:00", "18:00"]]},
    }
    assert got["handoff_keywords"] == ["refund now", "lawyer"]

    # The page shows the saved settings back, in the form's terms.
    shown = shop.owner.get(f"/assistants/{assistant_id}").text
    assert 'value="en, fr, pt-BR"' in shown
    assert 'value="09:00-12:00, 14:00-18:00"' in shown
    assert ">refund now\nlawyer</textarea>" in shown
    assert re.search(r'value="returns" checked', shown)
    assert not re.search(r'value="faq" checked', shown)
    assert '<option value="openai" selected>' in shown
    assert 'id="f-hours-scheduled" name="hours_mode" value="scheduled" checked' in shown

    # Back to always open, all collections, and active: nothing ticked is nothing sent.
    again = full_form(name="Mia the stylist", llm_provider="openai", llm_model="llama3.1")
    again["llm_base_url"] = "http://127.0.0.1:11434/v1"
    saved = post_form(
        shop.owner, f"/assistants/{assistant_id}", again, f"/assistants/{assistant_id}"
    )
    assert saved.status_code == 303, saved.text
    got = shop.api.get(f"/api/v1/assistants/{assistant_id}").json()
    assert got["business_hours"] is None
    assert got["knowledge_collections"] == []
    assert got["active"] is True
    assert got["has_llm_api_key"] is True  # an empty key field keeps the key

    async with database.transaction() as session:
        events = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.details)
                .where(AuditEvent.target_id == assistant_id)
                .order_by(AuditEvent.seq)
            )
        ).all()
    assert [action for action, _ in events] == [
        "assistant.created",
        "assistant.updated",
        "assistant.updated",
    ]
    assert SECRET_KEY not in str(events)


@pytest.mark.parametrize(
    ("overrides", "field", "control", "says"),
    [
        ({"languages": "english!"}, "languages", None, "is not a language code"),
        ({"temperature": "hot"}, "temperature", None, "a number"),
        ({"temperature": "3"}, "temperature", None, "between 0 and 2"),
        ({"max_tokens": "9000"}, "max_tokens", None, "1 to 4096"),
        ({"ai_disclosure": "  "}, "ai_disclosure", None, "cannot be empty"),
        ({"name": ""}, "name", None, "1 to 100 characters"),
        ({"hours_mode": "scheduled", "hours_tue": "9 to 5"}, "hours_tue", None, "Tuesday"),
        ({"hours_mode": "scheduled", "hours_wed": "18:00-09:00"}, "hours_wed", None, "ends before"),
        ({"hours_mode": "scheduled", "timezone": "Mars/Olympus"}, "timezone", None, "timezone"),
        ({"llm_base_url": "http://10.1.2.3/v1", "llm_api_key": "k"}, "llm_base_url", None, ""),
        ({"llm_base_url": "http://127.0.0.1:11434/v1"}, "llm_api_key", None, "own API key"),
        ({"tone": "grumpy"}, "tone", None, "tones offered"),
    ],
)
async def test_an_error_is_shown_next_to_its_field_and_nothing_is_saved(
    shop: Shop, overrides: dict[str, str], field: str, control: str | None, says: str
) -> None:
    assistant_id = create(shop)
    before = shop.api.get(f"/api/v1/assistants/{assistant_id}").json()
    form = full_form(persona="A persona typed with the mistake", **overrides)
    response = post_form(
        shop.owner, f"/assistants/{assistant_id}", form, f"/assistants/{assistant_id}"
    )
    assert response.status_code == 422, response.text
    message = assert_error_next_to(response.text, field, control)
    assert says in message
    # What was typed is still there to correct.
    assert ">A persona typed with the mistake</textarea>" in response.text
    assert shop.api.get(f"/api/v1/assistants/{assistant_id}").json() == before


async def test_every_mistake_is_shown_at_once(shop: Shop) -> None:
    assistant_id = create(shop)
    form = full_form(
        languages="english!",
        temperature="warm",
        hours_mode="scheduled",
        hours_mon="9-5",
        hours_fri="noon to late",
    )
    path = f"/assistants/{assistant_id}"
    response = post_form(shop.owner, path, form, path)
    assert response.status_code == 422
    for field in ("languages", "temperature", "hours_mon", "hours_fri"):
        assert_error_next_to(response.text, field)
    assert "hours_tue-error" not in response.text
    summary = re.search(r'data-testid="form-errors">(.+?)</div>', response.text, re.S)
    assert summary
    assert "4 things to correct" in summary.group(1)
    assert 'href="#f-temperature"' in summary.group(1)


async def test_a_new_assistant_with_an_error_is_not_created(shop: Shop) -> None:
    create(shop, name="Mia")
    response = post_form(
        shop.owner, "/assistants", full_form(name="Mia", greeting="Hi!"), "/assistants/new"
    )
    assert response.status_code == 409
    assert "already exists" in assert_error_next_to(response.text, "name")
    assert ">Hi!</textarea>" in response.text
    assert [a["name"] for a in shop.api.get("/api/v1/assistants").json()] == ["Mia"]


async def test_the_model_key_is_written_but_never_shown(shop: Shop) -> None:
    assistant_id = create(shop, llm_api_key=SECRET_KEY)
    page = shop.owner.get(f"/assistants/{assistant_id}")
    assert SECRET_KEY not in page.text
    assert "A key is set." in page.text
    assert 'id="f-remove_llm_api_key"' in page.text
    assert 'value=""' in opening_tag(page.text, "f-llm_api_key")

    # A mistake elsewhere: the typed key is not put back into the page either.
    other = "sk-another-secret-9876543210"
    failed = post_form(
        shop.owner,
        f"/assistants/{assistant_id}",
        full_form(llm_api_key=other, temperature="hot"),
        f"/assistants/{assistant_id}",
    )
    assert failed.status_code == 422
    assert other not in failed.text
    assert SECRET_KEY not in failed.text
    assert "Type the key again" in failed.text

    both = post_form(
        shop.owner,
        f"/assistants/{assistant_id}",
        full_form(llm_api_key=other, remove_llm_api_key="on"),
        f"/assistants/{assistant_id}",
    )
    assert both.status_code == 422
    assert "not both" in assert_error_next_to(both.text, "llm_api_key")

    removed = post_form(
        shop.owner,
        f"/assistants/{assistant_id}",
        full_form(remove_llm_api_key="on"),
        f"/assistants/{assistant_id}",
    )
    assert removed.status_code == 303
    assert shop.api.get(f"/api/v1/assistants/{assistant_id}").json()["has_llm_api_key"] is False
    page = shop.owner.get(f"/assistants/{assistant_id}")
    assert "No key is set." in page.text
    assert 'id="f-remove_llm_api_key"' not in page.text


async def test_the_offline_responder_says_what_it_ignores(shop: Shop) -> None:
    assistant_id = create(shop)
    page = shop.owner.get(f"/assistants/{assistant_id}").text
    note = re.search(r'<p class="offline-note"[^>]*>(.+?)</p>', page, re.DOTALL)
    assert note
    assert "ignores the persona, tone and instructions" in note.group(1)
    assert 'href="#model"' in note.group(1)
    assert 'id="model"' in page


async def test_the_list_shows_each_assistant_and_where_it_answers(
    shop: Shop, database: Database
) -> None:
    assistant_id = create(shop, name="Mia", knowledge_collections=["faq"])
    created = shop.api.post(
        "/api/v1/assistants",
        json={"name": "Leo", "allowed_origins": ["https://shop.example"], "active": False},
    )
    assert created.status_code == 201
    async with database.transaction() as session:
        for _ in range(2):
            await make_whatsapp_number(session, shop.organisation_id, uuid.UUID(assistant_id))
    page = shop.owner.get("/assistants").text
    assert re.search(r"Leo</a>.*Paused.*Offline responder.*All collections.*on 1 site", page, re.S)
    assert re.search(r"Mia</a>.*Answering.*faq.*2 WhatsApp numbers", page, re.S)
    assert 'href="/assistants/new"' in page


async def test_a_viewer_reads_the_settings_and_cannot_change_them(
    shop: Shop, database: Database, second_browser: Browser
) -> None:
    assistant_id = create(shop, name="Mia")
    viewer, _ = await add_member(database, shop.organisation_id, Role.VIEWER)
    assert second_browser.sign_in(viewer.email, PASSWORD).status_code == 303

    listing = second_browser.get("/assistants")
    assert listing.status_code == 200
    assert "Mia" in listing.text
    assert 'href="/assistants/new"' not in listing.text
    page = second_browser.get(f"/assistants/{assistant_id}")
    assert page.status_code == 200
    assert '<fieldset class="bare" disabled>' in page.text
    assert "assistant-save" not in page.text
    assert "Delete assistant" not in page.text
    assert second_browser.get("/assistants/new").status_code == 403

    token = second_browser.csrf(f"/assistants/{assistant_id}")
    for path, form in (
        (f"/assistants/{assistant_id}", full_form(name="Renamed by a viewer")),
        (f"/assistants/{assistant_id}/delete", {}),
        ("/assistants", full_form(name="Created by a viewer")),
    ):
        refused = second_browser.http.post(path, data={**form, "csrf_token": token})
        assert refused.status_code == 403, path
    assert [a["name"] for a in shop.api.get("/api/v1/assistants").json()] == ["Mia"]


async def test_deleting_an_assistant(shop: Shop, database: Database) -> None:
    assistant_id = create(shop, name="Mia")
    page = shop.owner.get(f"/assistants/{assistant_id}").text
    assert re.search(r'action="/assistants/[^"]+/delete" data-confirm="Delete Mia\?', page)
    deleted = shop.owner.post(
        f"/assistants/{assistant_id}/delete", csrf_from=f"/assistants/{assistant_id}"
    )
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/assistants?notice=assistant-deleted"
    assert "Assistant deleted." in shop.owner.get("/assistants?notice=assistant-deleted").text
    assert shop.api.get(f"/api/v1/assistants/{assistant_id}").status_code == 404
    assert shop.owner.get(f"/assistants/{assistant_id}").status_code == 404
    async with database.transaction() as session:
        action = await session.scalar(
            select(AuditEvent.action).where(
                AuditEvent.target_id == assistant_id, AuditEvent.action == "assistant.deleted"
            )
        )
    assert action == "assistant.deleted"


async def test_the_satisfaction_survey_is_set_in_the_form(shop: Shop) -> None:
    new = shop.owner.get("/assistants/new").text
    assert "checked" in opening_tag(new, "f-csat_enabled")  # on for a new assistant
    assistant_id = create(shop, csat_enabled="on", csat_question="  Did we help? 1-5  ")
    got = shop.api.get(f"/api/v1/assistants/{assistant_id}").json()
    assert (got["csat_enabled"], got["csat_question"]) == (True, "Did we help? 1-5")
    page = shop.owner.get(f"/assistants/{assistant_id}").text
    assert ">Did we help? 1-5</textarea>" in page

    path = f"/assistants/{assistant_id}"
    saved = post_form(shop.owner, path, full_form(csat_question=""), path)
    assert saved.status_code == 303, saved.text
    got = shop.api.get(f"/api/v1/assistants/{assistant_id}").json()
    # An unticked box and an empty question: no survey, and the default wording if it returns.
    assert (got["csat_enabled"], got["csat_question"]) == (False, None)
    assert "checked" not in opening_tag(shop.owner.get(path).text, "f-csat_enabled")
