"""WhatsApp numbers through their API: registration, validation, write-only secrets, the
platform-wide uniqueness of Meta's phone number id, roles, and the audit trail."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from cybergine.accounts.models import Role
from cybergine.channels.whatsapp.ingest import NumberDirectory
from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from cybergine.settings import Settings
from tests.support.conversations import digits
from tests.support.factories import make_api_key, make_organisation_with_key
from tests.support.server import LiveServer

ACCESS_TOKEN = "EAAGtestAccessTokenVerySecret0123456789"
APP_SECRET = "app-secret-0123456789abcdef"
VERIFY_TOKEN = "verify-me-0123456789"
BASE = "/api/v1/channels/whatsapp"


# Meta's side: every number a test here connects is registered with its token, so the
# credential check passes (tests/channels/whatsapp/test_credential_check.py refuses some).
_META: list[GraphSimulator] = []


@pytest.fixture(autouse=True)
def meta(graph: GraphSimulator) -> Iterator[GraphSimulator]:
    _META.append(graph)
    yield graph
    _META.remove(graph)


@pytest.fixture
async def api(live_server: LiveServer, database: Database) -> AsyncIterator[httpx.Client]:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as client:
        yield client


def _assistant(api: httpx.Client, name: str = "Mia") -> str:
    response = api.post("/api/v1/assistants", json={"name": name})
    assert response.status_code == 201, response.text
    assistant_id: str = response.json()["id"]
    return assistant_id


def _body(assistant: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "assistant_id": assistant,
        "phone_number_id": digits(),
        "waba_id": digits(),
        "display_phone_number": "+1 (555) 010-0200",
        "access_token": ACCESS_TOKEN,
        **overrides,
    }
    phone_number_id, token = body["phone_number_id"], body["access_token"]
    if isinstance(phone_number_id, str) and isinstance(token, str):
        _META[-1].add_number(phone_number_id.strip(), token.strip())
    return body


def _create(api: httpx.Client, assistant_id: str, **overrides: Any) -> dict[str, Any]:
    response = api.post(BASE, json=_body(assistant_id, **overrides))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _names_field(response: httpx.Response, field: str) -> bool:
    problem = response.json()
    if problem.get("field") == field:
        return True
    return any(field in error["location"] for error in problem.get("errors", []))


async def test_create_list_get_patch_delete(api: httpx.Client, settings: Settings) -> None:
    mia = _assistant(api)
    created = _create(
        api,
        mia,
        phone_number_id=" 106540352242922 ",
        waba_id="102290129340398",
        opt_out_keywords=[" Unsubscribe ", "PARAR", "unsubscribe", "Stop  all"],
        opt_in_keywords=["Volver"],
        send_rate=20,
    )
    assert created["assistant_id"] == mia
    assert created["phone_number_id"] == "106540352242922"
    assert created["waba_id"] == "102290129340398"
    assert created["display_phone_number"] == "+1 (555) 010-0200"
    assert created["opt_out_keywords"] == ["unsubscribe", "parar", "stop all"]
    assert created["opt_in_keywords"] == ["volver"]
    assert created["send_rate"] == 20
    assert created["active"] is True
    assert created["has_access_token"] is True
    assert created["has_app_secret"] is False
    assert created["has_verify_token"] is False
    assert created["webhook_url"] == f"{settings.public_url}/webhooks/whatsapp"

    bare = _create(api, mia, display_phone_number="+44 20 7946 0000")
    assert bare["opt_out_keywords"] == []
    assert bare["send_rate"] is None

    listed = api.get(BASE)
    assert listed.status_code == 200
    assert [n["display_phone_number"] for n in listed.json()] == [
        "+1 (555) 010-0200",
        "+44 20 7946 0000",
    ]
    url = f"{BASE}/{created['id']}"
    fetched = api.get(url)
    assert fetched.status_code == 200
    assert fetched.json() == created

    other = _assistant(api, "Alex")
    patched = api.patch(url, json={"assistant_id": other, "active": False, "send_rate": None})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["assistant_id"] == other
    assert body["active"] is False
    assert body["send_rate"] is None
    # Fields not sent are untouched.
    assert body["opt_out_keywords"] == ["unsubscribe", "parar", "stop all"]
    assert body["phone_number_id"] == "106540352242922"

    # Without an assistant, messages wait for agents.
    detached = api.patch(url, json={"assistant_id": None})
    assert detached.status_code == 200
    assert detached.json()["assistant_id"] is None

    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert api.delete(url).status_code == 404
    assert api.patch(url, json={"active": True}).status_code == 404
    assert [n["id"] for n in api.get(BASE).json()] == [bare["id"]]


async def test_secrets_are_write_only(api: httpx.Client, database: Database) -> None:
    mia = _assistant(api)
    created = api.post(
        BASE, json=_body(mia, app_secret=APP_SECRET, verify_token=f"  {VERIFY_TOKEN} ")
    )
    assert created.status_code == 201, created.text
    number = created.json()
    assert number["has_app_secret"] is True
    assert number["has_verify_token"] is True
    url = f"{BASE}/{number['id']}"
    responses = [
        created,
        api.get(BASE),
        api.get(url),
        api.patch(url, json={"display_phone_number": "+1 555 010 0300"}),
    ]
    for response in responses:
        assert response.status_code in (200, 201)
        for secret in (ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN, "EAAG"):
            assert secret not in response.text
        body = response.json()
        for item in body if isinstance(body, list) else [body]:
            assert not {"access_token", "app_secret", "verify_token", "verify_token_sha256"} & set(
                item
            )

    async with database.transaction() as session:
        row = (
            await session.execute(
                text("SELECT access_token, app_secret, verify_token_sha256 FROM whatsapp_numbers")
            )
        ).one()
        dump = (
            await session.execute(text("SELECT row_to_json(n)::text FROM whatsapp_numbers n"))
        ).scalar_one()
    access_token, app_secret, digest = row
    assert access_token.startswith("gAAAA")  # a Fernet token
    assert app_secret.startswith("gAAAA")
    assert digest == hashlib.sha256(VERIFY_TOKEN.encode()).hexdigest()
    for secret in (ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN):
        assert secret not in dump

    # The access token can be replaced (by one Meta accepts for the number), never removed.
    _META[-1].add_number(number["phone_number_id"], "EAAGanotherToken")
    replaced = api.patch(url, json={"access_token": "EAAGanotherToken"})
    assert replaced.status_code == 200
    assert "EAAGanotherToken" not in replaced.text
    refused = api.patch(url, json={"access_token": None})
    assert refused.status_code == 422
    assert refused.json()["field"] == "access_token"
    async with database.transaction() as session:
        again = (
            await session.execute(text("SELECT access_token FROM whatsapp_numbers"))
        ).scalar_one()
    assert again not in (None, access_token)

    # Null brings back the platform defaults.
    cleared = api.patch(url, json={"app_secret": None, "verify_token": None})
    assert cleared.status_code == 200
    assert cleared.json()["has_app_secret"] is False
    assert cleared.json()["has_verify_token"] is False
    assert cleared.json()["has_access_token"] is True
    async with database.transaction() as session:
        nulls = (
            await session.execute(
                text("SELECT app_secret, verify_token_sha256 FROM whatsapp_numbers")
            )
        ).one()
    assert tuple(nulls) == (None, None)


async def test_a_number_connects_to_one_organisation_only(
    api: httpx.Client, database: Database, live_server: LiveServer
) -> None:
    mia = _assistant(api)
    phone_number_id = digits()
    _create(api, mia, phone_number_id=phone_number_id)

    again = api.post(BASE, json=_body(mia, phone_number_id=phone_number_id))
    assert again.status_code == 409
    assert again.json()["detail"] == "This WhatsApp number is already connected."

    _, other_key = await make_organisation_with_key(database, name="Rival Emporium")
    with live_server.client(headers={"authorization": f"Bearer {other_key}"}) as rival:
        theirs = _assistant(rival)
        taken = rival.post(BASE, json=_body(theirs, phone_number_id=phone_number_id))
        assert taken.status_code == 409
        assert taken.headers["content-type"] == "application/problem+json"
        assert taken.json()["detail"] == "This WhatsApp number is already connected."
        assert taken.json()["field"] == "phone_number_id"
        assert "Acme" not in taken.text
        assert rival.get(BASE).json() == []
        # Another number is theirs to connect.
        assert rival.post(BASE, json=_body(theirs)).status_code == 201


async def test_the_assistant_must_be_the_organisations_own(
    api: httpx.Client, database: Database, live_server: LiveServer
) -> None:
    _, other_key = await make_organisation_with_key(database, name="Elsewhere")
    with live_server.client(headers={"authorization": f"Bearer {other_key}"}) as elsewhere:
        foreign = _assistant(elsewhere, "Theirs")
    mine = _assistant(api)
    number = _create(api, mine)

    answers = [
        api.post(BASE, json=_body(foreign)),
        api.post(BASE, json=_body(str(uuid.uuid4()))),
        api.patch(f"{BASE}/{number['id']}", json={"assistant_id": foreign}),
        api.patch(f"{BASE}/{number['id']}", json={"assistant_id": str(uuid.uuid4())}),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == "assistant_id"
        assert answer.json()["detail"] == "No such assistant."
    assert api.get(f"{BASE}/{number['id']}").json()["assistant_id"] == mine
    assert len(api.get(BASE).json()) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone_number_id": ""}, "phone_number_id"),
        ({"phone_number_id": "12-34"}, "phone_number_id"),
        ({"phone_number_id": "1" * 65}, "phone_number_id"),
        ({"phone_number_id": 1234}, "phone_number_id"),
        ({"waba_id": "abc"}, "waba_id"),
        ({"waba_id": "9" * 65}, "waba_id"),
        ({"waba_id": None}, "waba_id"),
        ({"display_phone_number": "call me"}, "display_phone_number"),
        ({"display_phone_number": "+ - ()"}, "display_phone_number"),
        ({"display_phone_number": "+1 555 0100 " * 4}, "display_phone_number"),
        ({"display_phone_number": "+1 555<script>"}, "display_phone_number"),
        ({"access_token": ""}, "access_token"),
        ({"access_token": "   "}, "access_token"),
        ({"access_token": "x" * 1001}, "access_token"),
        ({"access_token": None}, "access_token"),
        ({"app_secret": ""}, "app_secret"),
        ({"app_secret": "s" * 201}, "app_secret"),
        ({"verify_token": ""}, "verify_token"),
        ({"opt_out_keywords": [""]}, "opt_out_keywords"),
        ({"opt_out_keywords": ["x" * 51]}, "opt_out_keywords"),
        ({"opt_in_keywords": [f"word{i}" for i in range(21)]}, "opt_in_keywords"),
        ({"opt_in_keywords": None}, "opt_in_keywords"),
        ({"send_rate": 0}, "send_rate"),
        ({"send_rate": -1}, "send_rate"),
        ({"send_rate": 1000.5}, "send_rate"),
        ({"active": None}, "active"),
        ({"assistant_id": "not-a-uuid"}, "assistant_id"),
        ({"has_access_token": True}, "has_access_token"),
        ({"webhook_url": "https://evil.example"}, "webhook_url"),
    ],
)
async def test_invalid_settings_are_refused_naming_the_field(
    api: httpx.Client, body: dict[str, Any], field: str
) -> None:
    mia = _assistant(api)
    created = api.post(BASE, json=_body(mia, **body))
    assert created.status_code == 422, created.text
    assert created.headers["content-type"] == "application/problem+json"
    assert _names_field(created, field), created.text
    assert api.get(BASE).json() == []

    if field == "phone_number_id":
        return  # not part of an update (see the next test)
    number = _create(api, mia)
    patched = api.patch(f"{BASE}/{number['id']}", json=body)
    assert patched.status_code == 422, patched.text
    assert _names_field(patched, field), patched.text
    assert api.get(f"{BASE}/{number['id']}").json() == number


async def test_the_limits_themselves_are_accepted(api: httpx.Client) -> None:
    mia = _assistant(api)
    created = _create(
        api,
        mia,
        phone_number_id="1" * 64,
        waba_id="2" * 64,
        display_phone_number="+" + "1" * 31,
        access_token="t" * 1000,
        app_secret="s" * 200,
        opt_out_keywords=[f"word{i}" for i in range(19)] + ["x" * 50],
        send_rate=1000,
    )
    assert len(created["opt_out_keywords"]) == 20
    assert created["send_rate"] == 1000
    tiny = api.patch(f"{BASE}/{created['id']}", json={"send_rate": 0.5})
    assert tiny.json()["send_rate"] == 0.5


async def test_the_phone_number_id_cannot_be_changed(api: httpx.Client) -> None:
    number = _create(api, _assistant(api))
    changed = api.patch(f"{BASE}/{number['id']}", json={"phone_number_id": digits()})
    assert changed.status_code == 422
    assert _names_field(changed, "phone_number_id")
    assert api.get(f"{BASE}/{number['id']}").json()["phone_number_id"] == number["phone_number_id"]


async def test_required_fields_are_named(api: httpx.Client) -> None:
    mia = _assistant(api)
    for field in ("assistant_id", "phone_number_id", "waba_id", "display_phone_number"):
        body = _body(mia)
        del body[field]
        missing = api.post(BASE, json=body)
        assert missing.status_code == 422
        assert _names_field(missing, field), missing.text
    body = _body(mia)
    del body["access_token"]
    assert _names_field(api.post(BASE, json=body), "access_token")


async def test_a_viewer_reads_but_cannot_write(
    api: httpx.Client, database: Database, live_server: LiveServer
) -> None:
    mia = _assistant(api)
    number = _create(api, mia)
    organisation_id = await _organisation_of(database, number["id"])
    viewer_key = await make_api_key(database, organisation_id, Role.VIEWER)
    url = f"{BASE}/{number['id']}"
    with live_server.client(headers={"authorization": f"Bearer {viewer_key}"}) as viewer:
        assert viewer.get(BASE).status_code == 200
        assert viewer.get(url).json() == number
        assert viewer.post(BASE, json=_body(mia)).status_code == 403
        assert viewer.patch(url, json={"active": False}).status_code == 403
        assert viewer.delete(url).status_code == 403
    assert api.get(url).json() == number
    assert len(api.get(BASE).json()) == 1


async def test_another_organisations_number_is_not_found(
    api: httpx.Client, database: Database, live_server: LiveServer
) -> None:
    number = _create(api, _assistant(api))
    url = f"{BASE}/{number['id']}"
    _, other_key = await make_organisation_with_key(database, name="Elsewhere")
    with live_server.client(headers={"authorization": f"Bearer {other_key}"}) as elsewhere:
        for response in (
            elsewhere.get(url),
            elsewhere.patch(url, json={"active": False}),
            elsewhere.delete(url),
        ):
            assert response.status_code == 404
            assert response.json()["detail"] == "No such WhatsApp number."
        assert elsewhere.get(BASE).json() == []
    assert api.get(url).json() == number


async def _organisation_of(database: Database, number_id: str) -> Any:
    async with database.transaction() as session:
        return (
            await session.execute(
                text("SELECT organisation_id FROM whatsapp_numbers WHERE id = :id"),
                {"id": number_id},
            )
        ).scalar_one()


async def test_changes_are_audited_by_field_name_without_secrets(
    api: httpx.Client, database: Database
) -> None:
    number = _create(api, _assistant(api), app_secret=APP_SECRET, verify_token=VERIFY_TOKEN)
    url = f"{BASE}/{number['id']}"
    _META[-1].add_number(number["phone_number_id"], "EAAGsecondToken")
    api.patch(url, json={"access_token": "EAAGsecondToken", "verify_token": "second-verify"})
    api.patch(url, json={"display_phone_number": number["display_phone_number"]})  # no change
    api.delete(url)

    async with database.transaction() as session:
        events = list(
            (
                await session.execute(
                    select(AuditEvent)
                    .where(AuditEvent.action.like("whatsapp_number.%"))
                    .order_by(AuditEvent.seq)
                )
            ).scalars()
        )
    assert [e.action for e in events] == [
        "whatsapp_number.created",
        "whatsapp_number.updated",
        "whatsapp_number.deleted",
    ]
    assert all(e.target_type == "whatsapp_number" and e.target_id == number["id"] for e in events)
    assert all(e.actor_type == "api_key" for e in events)
    created_event, updated_event, _ = events
    assert set(created_event.details["fields"]) == {
        "assistant_id",
        "phone_number_id",
        "waba_id",
        "display_phone_number",
        "access_token",
        "app_secret",
        "verify_token",
    }
    assert updated_event.details == {"fields": ["access_token", "verify_token"]}
    everything = json.dumps([e.details for e in events])
    for secret in (ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN, "EAAGsecondToken", "second-verify"):
        assert secret not in everything
    assert number["phone_number_id"] not in everything


async def test_changes_reach_the_webhook_routing_at_once(
    api: httpx.Client, database: Database, live_server: LiveServer
) -> None:
    directory = NumberDirectory(database, default_app_secret=None, ttl_seconds=600)
    live_server.server.config.app.state.whatsapp_numbers = directory
    phone_number_id = digits()
    assert await directory.lookup([phone_number_id]) == {}

    number = _create(api, _assistant(api), phone_number_id=phone_number_id)
    route = (await directory.lookup([phone_number_id]))[phone_number_id]
    assert str(route.id) == number["id"]
    assert route.active is True
    directory.remember({phone_number_id: route})  # as a delivery it verified does

    url = f"{BASE}/{number['id']}"
    assert api.patch(url, json={"active": False}).status_code == 200
    route = (await directory.lookup([phone_number_id]))[phone_number_id]
    assert route.active is False
    directory.remember({phone_number_id: route})

    assert api.delete(url).status_code == 204
    assert await directory.lookup([phone_number_id]) == {}
