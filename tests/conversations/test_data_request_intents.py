"""A customer's words that exercise a right over their data (policy §14), in the
assistant's languages: which right, and nothing for ordinary questions or a negation."""

from __future__ import annotations

import pytest

from cybergine.conversations.answering import data_request_confirmation
from cybergine.conversations.data_request_replies import CONFIRMATIONS, WHAT
from cybergine.conversations.intent_phrases import LANGUAGES
from cybergine.conversations.intent_phrases.rights import KINDS, RIGHTS
from cybergine.conversations.intents import DataRequest, detect_data_request
from cybergine.privacy.request_models import RESPONSE_DAYS, RequestKind


@pytest.mark.parametrize(
    ("text", "languages", "kind"),
    [
        ("Please delete my data", [], "erasure"),
        ("Can you erase all my personal information?", [], "erasure"),
        ("forget me", [], "erasure"),
        ("What do you know about me?", [], "access"),
        ("What data do you hold on me", [], "access"),
        ("Send me a copy of my data", [], "portability"),
        ("I'd like to export my data", [], "portability"),
        ("Correct my name please, it's Ada", [], "rectification"),
        ("You have my phone number wrong", [], "rectification"),
        ("Stop processing my data", [], "restriction"),
        ("I object to the processing of my personal data", [], "objection"),
        ("Supprimez mes données s'il vous plaît", ["fr-FR"], "erasure"),
        ("Que savez-vous sur moi ?", ["fr"], "access"),
        ("Bitte löschen Sie meine Daten", ["de"], "erasure"),
        ("Was wissen Sie über mich?", ["de-AT"], "access"),
        ("Borren mis datos, por favor", ["es"], "erasure"),
        ("¿Qué datos tienen sobre mí?", ["es"], "access"),
        ("Corrijam o meu nome", ["pt-BR"], "rectification"),
        ("Apaguem os meus dados", ["pt"], "erasure"),
        ("Cancellate i miei dati", ["it"], "erasure"),
        ("Verwijder mijn gegevens", ["nl"], "erasure"),
    ],
)
def test_a_right_is_recognised(text: str, languages: list[str], kind: str) -> None:
    found = detect_data_request(text, languages)
    assert found is not None
    assert found.kind == kind


@pytest.mark.parametrize(
    "text",
    [
        "Where is my order?",
        "hello",
        "Do not delete my data",
        "I don't want to delete my data",
        "How do I change my delivery address?",
        "",
    ],
)
def test_ordinary_words_are_no_request(text: str) -> None:
    assert detect_data_request(text, ["en"]) is None


def test_another_languages_phrases_apply_only_when_the_assistant_speaks_it() -> None:
    assert detect_data_request("Supprimez mes données", []) is None
    assert detect_data_request("Supprimez mes données", ["fr"]) == DataRequest("erasure", "fr")
    assert detect_data_request("Delete my data", ["fr"]) == DataRequest("erasure", "en")


@pytest.mark.parametrize("language", sorted(RIGHTS))
def test_the_confirmation_is_in_the_customers_language_and_promises_the_due_date(
    language: str,
) -> None:
    for kind in KINDS:
        said = data_request_confirmation(DataRequest(kind, language))
        assert str(RESPONSE_DAYS) in said
        assert WHAT[language][kind] in said
    assert set(CONFIRMATIONS) == set(WHAT) == set(RIGHTS)


def test_the_phrases_cover_every_language_and_name_real_kinds() -> None:
    assert set(RIGHTS) == set(LANGUAGES)
    kinds = {kind.value for kind in RequestKind}
    assert set(KINDS) <= kinds
    for phrases in RIGHTS.values():
        assert set(phrases) == set(KINDS)
