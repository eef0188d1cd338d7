"""Who is asked for a rating when a conversation closes, in which words, and what the
assistant's settings say (the channels' end-to-end tests show the survey reaching the
widget and WhatsApp)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text

from cybergine.accounts.models import Role
from cybergine.accounts.principal import Principal
from cybergine.assistants.models import Assistant
from cybergine.conversations import csat, inbox
from cybergine.conversations.csat_models import CsatSurvey
from cybergine.conversations.models import (
    ERASED_PREFIX,
    Channel,
    Conversation,
    Message,
    Sender,
)
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.errors import InvalidInput, NotFound
from cybergine.privacy.audit import AuditEvent
from tests.support.conversations import make_conversation, make_customer
from tests.support.factories import make_organisation, make_organisation_with_key
from tests.support.server import LiveServer


def test_the_default_question_is_in_the_assistants_first_language() -> None:
    assert csat.default_question(["pt-BR", "en"]).startswith("Como avalia")
    assert csat.default_question(["ja", "fr"]).startswith("Comment évaluez-vous")
    assert csat.default_question(["ja"]) == csat.default_question(["en"])
    assert csat.default_question(["de"]).startswith("Wie bewerten Sie")


def test_a_typed_rating_is_a_lone_digit_from_one_to_five() -> None:
    assert [csat.typed_rating(t) for t in ("4", " 5 ", "3.", "1!")] == [4, 5, 3, 1]
    assert [csat.typed_rating(t) for t in ("0", "6", "45", "4 stars", "", None)] == [None] * 6
    choice = f"csat:{uuid.UUID(int=7)}:2"
    assert csat.survey_choice(choice) == (uuid.UUID(int=7), 2)
    assert csat.survey_choice("csat:nonsense") is None
    assert csat.survey_choice("handoff") is None


async def test_the_survey_settings_through_the_api(
    live_server: LiveServer, database: Database
) -> None:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        created = api.post("/api/v1/assistants", json={"name": "Mia"})
        assert created.status_code == 201, created.text
        body: dict[str, Any] = created.json()
        assert (body["csat_enabled"], body["csat_question"]) == (True, None)
        path = f"/api/v1/assistants/{body['id']}"
        changed = api.patch(path, json={"csat_enabled": False, "csat_question": " Rate us? "})
        assert changed.status_code == 200, changed.text
        assert (changed.json()["csat_enabled"], changed.json()["csat_question"]) == (
            False,
            "Rate us?",
        )
        emptied = api.patch(path, json={"csat_question": "  "})
        assert emptied.json()["csat_question"] is None  # the default question again
        too_long = api.patch(path, json={"csat_question": "x" * 2001})
        assert too_long.status_code == 422
        assert too_long.headers["content-type"].startswith("application/problem+json")


async def test_an_assistant_from_before_the_setting_sends_no_survey(database: Database) -> None:
    organisation, _ = await make_organisation(database)
    async with database.transaction() as session:
        # A row written without the column, as every row before migration 0029 was.
        await session.execute(
            text(
                "INSERT INTO assistants (id, organisation_id, name, persona, instructions, tone,"
                " languages, greeting, fallback_message, ai_disclosure, knowledge_collections,"
                " llm_provider, llm_model, temperature, max_tokens, redact_personal_data,"
                " handoff_keywords, active, widget_key, allowed_origins, widget)"
                " VALUES (:id, :org, 'Old', '', '', 'professional', '{en}', '', 'Sorry.',"
                " 'I am an AI assistant.', '{}', 'extractive', 'm', 0.2, 500, true, '{}',"
                " true, :key, '{}', '{}')"
            ),
            {"id": uuid.uuid4(), "org": organisation.id, "key": f"wk_{uuid.uuid4().hex}"},
        )
        old = (await session.execute(select(Assistant).where(Assistant.name == "Old"))).scalar_one()
        assert old.csat_enabled is False


async def _closed(
    database: Database, *, csat_enabled: bool = True, **customer_fields: Any
) -> tuple[uuid.UUID, CsatSurvey | None]:
    organisation, owner = await make_organisation(database)
    async with database.transaction() as session:
        scope = TenantScope(session, organisation.id)
        assistant = scope.add(Assistant(name="Mia", languages=["fr"], csat_enabled=csat_enabled))
        await session.flush()
        customer = await make_customer(
            session, organisation.id, channel=Channel.WEBCHAT, **customer_fields
        )
        conversation = await make_conversation(
            session,
            organisation.id,
            customer=customer,
            assistant_id=assistant.id,
            last_inbound_at=datetime.now(UTC),
        )
        await inbox.close(
            scope, Principal(organisation.id, Role.OWNER, user_id=owner.id), conversation.id
        )
        survey = await session.scalar(select(CsatSurvey))
        return organisation.id, survey


async def test_closing_asks_once_in_the_assistants_language(database: Database) -> None:
    _, survey = await _closed(database)
    assert survey is not None
    async with database.transaction() as session:
        message = await session.get_one(Message, survey.message_id)
        assert message.sender == Sender.SYSTEM
        assert message.text == csat.default_question(["fr"])
        assert message.payload is not None
        assert message.payload["csat"] == {"survey_id": str(survey.id), "rating": None}
        rows = message.payload["list"]["sections"][0]["rows"]
        assert [r["id"] for r in rows] == [f"csat:{survey.id}:{n}" for n in (5, 4, 3, 2, 1)]
        assert message.payload["list"]["button"] == "Noter"
        conversation = await session.get_one(Conversation, survey.conversation_id)
        # Closed again: nothing more is asked.
        assert await csat.send_survey(session, conversation) is None
        assert len((await session.execute(select(CsatSurvey))).scalars().all()) == 1
        audited = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.action == "conversation.closed")
            )
        ).scalar_one()
        assert audited.details["survey_sent"] is True


@pytest.mark.parametrize(
    "customer",
    [
        {"opted_out_at": datetime(2026, 1, 1, tzinfo=UTC)},
        {"processing_restricted_at": datetime(2026, 1, 1, tzinfo=UTC)},
        {"objected_at": datetime(2026, 1, 1, tzinfo=UTC)},
        {"external_id": f"{ERASED_PREFIX}abc"},
    ],
    ids=["opted-out", "restricted", "objecting", "erased"],
)
async def test_some_customers_are_never_asked(database: Database, customer: dict[str, Any]) -> None:
    _, survey = await _closed(database, **customer)
    assert survey is None


async def test_an_assistant_with_the_survey_off_asks_nothing(database: Database) -> None:
    _, survey = await _closed(database, csat_enabled=False)
    assert survey is None


async def test_the_first_rating_stands_and_only_the_customers_own(database: Database) -> None:
    organisation_id, survey = await _closed(database)
    assert survey is not None
    other_organisation, _ = await _closed(database)
    async with database.transaction() as session:
        with pytest.raises(InvalidInput):
            await csat.record_rating(session, organisation_id, survey.customer_id, survey.id, 6)
        with pytest.raises(NotFound):  # another organisation's survey is unknown
            await csat.record_rating(session, other_organisation, survey.customer_id, survey.id, 3)
        with pytest.raises(NotFound):  # so is another customer's
            await csat.record_rating(session, organisation_id, uuid.uuid4(), survey.id, 3)
        first = await csat.record_rating(session, organisation_id, survey.customer_id, survey.id, 3)
        again = await csat.record_rating(session, organisation_id, survey.customer_id, survey.id, 5)
        assert (first.recorded, again.recorded, again.survey.rating) == (True, False, 3)
