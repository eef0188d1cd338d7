"""The AI disclosure cannot be reworded into something that no longer says the assistant
is automated (privacy policy §7), in any language the assistants speak; a new assistant
discloses in its own language."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cybergine.assistants.disclosure import LANGUAGE_NAMES, default_disclosure, says_automated
from cybergine.assistants.disclosure_words import LANGUAGES
from cybergine.conversations.intent_phrases import LANGUAGES as ASSISTANT_LANGUAGES
from cybergine.db.engine import Database
from tests.support.factories import make_organisation_with_key
from tests.support.server import LiveServer

# Rewordings that still say it, in each language.
STILL_AUTOMATED = {
    "en": ["I'm Mia, a chatbot. Ask for a person any time.", "Answers here come from A.I."],
    "fr": [
        "Je suis Mia, une assistante virtuelle.",
        "Réponses générées par intelligence artificielle.",
    ],
    "de": ["Ich bin Mia, ein Chatbot.", "Antworten von künstlicher Intelligenz, automatisiert."],
    "es": ["Soy Mia, un asistente virtual.", "Respuestas de inteligencia artificial."],
    "pt": ["Sou a Mia, uma assistente virtual.", "Respostas automáticas por IA."],
    "it": ["Sono Mia, un assistente virtuale.", "Risposte dall'intelligenza artificiale."],
    "nl": ["Ik ben Mia, een chatbot.", "Antwoorden van kunstmatige intelligentie."],
}
# Rewordings that no longer say it, or deny it.
NOT_AUTOMATED = {
    "en": ["You're chatting with Mia from our team.", "You are not chatting with an AI."],
    "fr": ["Vous parlez avec Mia, de notre équipe.", "Ce n'est pas un robot."],
    "de": ["Sie sprechen mit Mia aus unserem Team.", "Ich bin kein Bot."],
    "es": ["Hablas con Mia, de nuestro equipo.", "No es un robot."],
    "pt": ["Você fala com a Mia, da nossa equipa.", "Não é um robô."],
    "it": ["Parli con Mia, del nostro team.", "Rispondiamo ai clienti, non sono un bot."],
    "nl": ["Je praat met Mia van ons team.", "Dit is geen chatbot."],
}


def test_every_language_the_assistants_speak_has_its_words() -> None:
    assert set(LANGUAGES) == set(ASSISTANT_LANGUAGES) == set(LANGUAGE_NAMES)
    assert set(STILL_AUTOMATED) == set(NOT_AUTOMATED) == set(LANGUAGES)


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_each_language_s_default_and_rewordings_say_it(language: str) -> None:
    assert says_automated(LANGUAGES[language].default)
    for reworded in STILL_AUTOMATED[language]:
        assert says_automated(reworded), reworded


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_what_no_longer_says_it_is_refused(language: str) -> None:
    for reworded in NOT_AUTOMATED[language]:
        assert not says_automated(reworded), reworded


def test_a_denial_reaches_only_its_own_clause() -> None:
    assert says_automated("Not sure? Ask a person. This chat is answered by a bot.")
    assert not says_automated("This is not an automated chat.")


def test_the_default_follows_the_first_language_that_has_one() -> None:
    assert default_disclosure(["pt-BR", "en"]) == LANGUAGES["pt"].default
    assert default_disclosure(["ja", "de"]) == LANGUAGES["de"].default
    assert default_disclosure(["ja"]) == LANGUAGES["en"].default


@pytest.fixture
async def api(live_server: LiveServer, database: Database) -> Iterator[httpx.Client]:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as client:
        yield client


async def test_the_api_refuses_a_disclosure_that_hides_the_assistant(api: httpx.Client) -> None:
    created = api.post("/api/v1/assistants", json={"name": "Mia"})
    assert created.status_code == 201, created.text
    url = f"/api/v1/assistants/{created.json()['id']}"
    for language, wordings in NOT_AUTOMATED.items():
        for wording in wordings:
            refused = api.patch(url, json={"ai_disclosure": wording})
            assert refused.status_code == 422, (language, wording)
            assert refused.headers["content-type"] == "application/problem+json"
            problem = refused.json()
            assert problem["field"] == "ai_disclosure"
            assert "automated assistant" in problem["detail"]
            assert "privacy policy §7" in problem["detail"]
    refused_at_creation = api.post(
        "/api/v1/assistants", json={"name": "Ben", "ai_disclosure": "Ben from our team."}
    )
    assert refused_at_creation.status_code == 422
    for wordings in STILL_AUTOMATED.values():
        for wording in wordings:
            accepted = api.patch(url, json={"ai_disclosure": wording})
            assert accepted.status_code == 200, accepted.text
            assert accepted.json()["ai_disclosure"] == wording


async def test_a_new_assistant_discloses_in_its_language(api: httpx.Client) -> None:
    german = api.post("/api/v1/assistants", json={"name": "Mia", "languages": ["de", "en"]})
    assert german.status_code == 201, german.text
    assert german.json()["ai_disclosure"] == LANGUAGES["de"].default
    chosen = api.post(
        "/api/v1/assistants",
        json={"name": "Ben", "languages": ["fr"], "ai_disclosure": "Ben est un chatbot."},
    )
    assert chosen.json()["ai_disclosure"] == "Ben est un chatbot."
