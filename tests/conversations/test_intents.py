from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cybergine.conversations.intents import (
    DEFAULT_OPT_IN_WORDS,
    DEFAULT_OPT_OUT_WORDS,
    REASON_CUSTOMER_REQUEST,
    REASON_HUMAN_REVIEW,
    REASON_KEYWORD,
    detect_handoff,
    detect_opt_change,
    is_greeting,
    next_opening,
    within_business_hours,
)
from cybergine.errors import InvalidInput

ALL = ["en", "fr", "de", "es", "pt-BR", "it", "nl"]
PARIS = ZoneInfo("Europe/Paris")

# --- Handoff --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "human",
        "Human!",
        "Agent?",
        "agent please",
        "person please",
        "a real person please",
        "HUMAN AGENT NOW",
        "operator",
        "representative",
        "customer service",
        "someone please",
        "hi, a human please",
        "I want a human",
        "i need an agent",
        "I'd like to speak to someone",
        "Can I talk to a person?",
        "can i chat with a real person",
        "let me speak with a live agent",
        "talk to a human",
        "Please connect me to an agent.",
        "transfer me to customer service",
        "Is there a real person I can talk to?",
        "I would like a real person to help me with this",
        "This bot is useless. Get me a manager!",
        "how can I reach a human",
        "Why can't I talk to a human?",
        "Why don't you let me talk to a person",
        "I dont want to wait, let me talk to a human",
        "No, I want a human",
    ],
)
def test_english_requests_for_a_person(text: str) -> None:
    request = detect_handoff(text, ["en"])
    assert request is not None, text
    assert request.reason == REASON_CUSTOMER_REQUEST
    assert not request.human_review


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Je veux parler à un conseiller", "fr"),
        ("je voudrais un humain svp", "fr"),
        ("Est-ce que je peux parler à quelqu'un ?", "fr"),
        ("une vraie personne s'il vous plaît", "fr"),
        ("Passez-moi le service client", "fr"),
        ("Conseiller !", "fr"),
        ("Ich möchte mit einem Mitarbeiter sprechen", "de"),
        ("Kann ich bitte mit einem echten Menschen reden?", "de"),
        ("Mensch bitte", "de"),
        ("Verbinden Sie mich mit dem Kundenservice", "de"),
        ("Quiero hablar con un agente", "es"),
        ("¿Puedo hablar con una persona real?", "es"),
        ("pásame con un asesor por favor", "es"),
        ("Quero falar com um atendente", "pt"),
        ("atendimento humano por favor", "pt-BR"),
        ("preciso falar com alguém", "pt-PT"),
        ("Vorrei parlare con un operatore", "it"),
        ("operatore per favore", "it"),
        ("Posso parlare con una persona reale?", "it"),
        ("Ik wil met een medewerker spreken", "nl"),
        ("kan ik iemand spreken?", "nl"),
        ("medewerker alstublieft", "nl-BE"),
    ],
)
def test_requests_for_a_person_in_the_assistants_languages(text: str, language: str) -> None:
    request = detect_handoff(text, [language])
    assert request is not None, text
    assert request.reason == REASON_CUSTOMER_REQUEST
    assert not request.human_review


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Je veux parler à un conseiller", "fr"),
        ("Ich möchte mit einem Mitarbeiter sprechen", "de"),
        ("Quiero hablar con un agente", "es"),
        ("Quero falar com um atendente", "pt"),
        ("Vorrei parlare con un operatore", "it"),
        ("Ik wil met een medewerker spreken", "nl"),
    ],
)
def test_other_languages_apply_only_when_the_assistant_speaks_them(
    text: str, language: str
) -> None:
    assert detect_handoff(text, ["en"]) is None
    assert detect_handoff(text, ["en", language]) is not None


def test_the_base_language_of_a_tag_selects_the_phrases() -> None:
    assert detect_handoff("Quero falar com um atendente", ["pt-BR"]) is not None
    assert detect_handoff("Quero falar com um atendente", ["pt_PT"]) is not None
    assert detect_handoff("Ich will einen Menschen", ["DE-at"]) is not None
    assert detect_handoff("Quero falar com um atendente", ["zh-Hant-TW"]) is None


def test_english_phrases_always_apply() -> None:
    assert detect_handoff("Can I talk to a human?", ["fr"]) is not None
    assert detect_handoff("Can I talk to a human?", []) is not None


@pytest.mark.parametrize(
    "text",
    [
        "humane treatment of animals",
        "Check the agenda",
        "this reagent is toxic",
        "my personal details changed",
        "the agent at the store was rude",
        "I talked to an agent yesterday and it was fine",
        "I need the agent's number",
        "Who is the operator of this website?",
        "Can a person under 18 order?",
        "How many people can stay in the room?",
        "Is the customer service open on Sunday?",
        "What is your customer service phone number?",
        "Is there a person limit on the tour?",
        "I need someone to pick up the parcel",
        "Is this a real diamond?",
        "What are your opening hours?",
        "This dress doesn't appeal to me",
        "hi, where is my order?",
    ],
)
def test_words_in_other_senses_do_not_hand_off(text: str) -> None:
    assert detect_handoff(text, ALL) is None


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("La personne qui a livré était polie", "fr"),
        ("Personne ne répond au téléphone", "fr"),
        ("Der Mitarbeiter im Laden war unfreundlich", "de"),
        ("El agente de la tienda fue grosero", "es"),
        ("O atendente da loja foi rude", "pt"),
        ("L'operatore è stato scortese", "it"),
        ("De medewerker in de winkel was onbeleefd", "nl"),
    ],
)
def test_mentions_of_staff_are_not_requests(text: str, language: str) -> None:
    assert detect_handoff(text, [language]) is None


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("I don't want to talk to a human", "en"),
        ("I do not need a person, thanks", "en"),
        ("I'd rather not talk to an agent", "en"),
        ("Are you a real person?", "en"),
        ("am i talking to a human?", "en"),
        ("I am a real person, not a bot", "en"),
        ("Je ne veux pas parler à un humain", "fr"),
        ("Êtes-vous une vraie personne ?", "fr"),
        ("Ich will nicht mit einem Menschen sprechen", "de"),
        ("Bist du ein echter Mensch?", "de"),
        ("No quiero hablar con un humano", "es"),
        ("¿Eres una persona real?", "es"),
        ("Não quero falar com um atendente", "pt"),
        ("Non voglio parlare con un operatore", "it"),
        ("Ik wil niet met een medewerker praten", "nl"),
    ],
)
def test_negated_requests_and_questions_about_the_bot_do_not_hand_off(
    text: str, language: str
) -> None:
    assert detect_handoff(text, [language]) is None


def test_a_negation_in_another_clause_does_not_cancel_a_request() -> None:
    assert detect_handoff("No quiero hablar con un humano", ["es"]) is None
    assert detect_handoff("No, quiero hablar con un humano", ["es"]) is not None
    request = detect_handoff("I don't want to talk to a bot. I want a human!", ["en"])
    assert request is not None
    assert request.matched == "want a human"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("I want a human to review this decision", "en"),
        ("I want to contest the decision", "en"),
        ("appeal", "en"),
        ("Appeal!", "en"),
        ("I want to appeal", "en"),
        ("How do I appeal?", "en"),
        ("review by a person please", "en"),
        ("I want this reviewed by a human", "en"),
        ("I request a human review of the automated decision", "en"),
        ("I object to the automated decision", "en"),
        ("I have the right not to be subject to a solely automated decision", "en"),
        ("please reconsider the refusal", "en"),
        ("Je conteste la décision", "fr"),
        ("Je veux qu'un humain examine mon dossier", "fr"),
        ("Comment faire appel ?", "fr"),
        ("Ich möchte, dass ein Mensch die Entscheidung überprüft", "de"),
        ("Ich lege Widerspruch gegen die Ablehnung ein", "de"),
        ("Quiero impugnar la decisión", "es"),
        ("Exijo una revisión humana", "es"),
        ("Quero contestar a decisão", "pt-BR"),
        ("Quero que uma pessoa revise isso", "pt"),
        ("voglio fare ricorso", "it"),
        ("Chiedo una revisione umana della decisione", "it"),
        ("Ik wil bezwaar maken tegen het besluit", "nl"),
        ("Ik wil dat dit door een mens wordt beoordeeld", "nl"),
    ],
)
def test_requests_for_human_review_of_a_decision(text: str, language: str) -> None:
    request = detect_handoff(text, [language])
    assert request is not None, text
    assert request.human_review
    assert request.reason == REASON_HUMAN_REVIEW


def test_human_review_takes_precedence_over_a_plain_request() -> None:
    request = detect_handoff("Let me talk to a person: I want to contest the decision", ["en"])
    assert request is not None
    assert request.human_review
    assert request.matched == "contest the decision"


def test_a_plain_request_is_not_a_review_request() -> None:
    request = detect_handoff("I want to talk to a human about my order", ["en"])
    assert request is not None
    assert not request.human_review


def test_matching_ignores_case_accents_and_punctuation() -> None:
    request = detect_handoff("JE VEUX PARLER A UN CONSEILLER!!!", ["fr"])
    assert request is not None
    assert request.matched == "parler a un conseiller"
    assert detect_handoff("Can I  talk to a HUMAN??", ["en"]) is not None
    assert detect_handoff("TALK-TO-A-HUMAN", ["en"]) is not None


def test_extra_keywords_match_whole_words_and_phrases_anywhere() -> None:
    keywords = ["complaint", "Refund request", "réclamation"]
    request = detect_handoff("I have a complaint about the delivery", ["en"], keywords)
    assert request is not None
    assert request.reason == REASON_KEYWORD
    assert request.matched == "complaint"
    assert not request.human_review
    request = detect_handoff("this is a REFUND   request.", ["en"], keywords)
    assert request is not None
    assert request.matched == "refund request"
    assert detect_handoff("Une reclamation SVP", ["fr"], keywords) is not None
    assert detect_handoff("Any complaints so far?", ["en"], keywords) is None
    assert detect_handoff("I want a refund", ["en"], keywords) is None


def test_empty_keywords_and_messages_never_match() -> None:
    assert detect_handoff("where is my parcel?", ["en"], ["", "  ", "!!!"]) is None
    assert detect_handoff("", ["en"], ["complaint"]) is None
    assert detect_handoff("  ?!  ", ["en"]) is None


def test_built_in_phrases_come_before_keywords() -> None:
    request = detect_handoff("complaint: let me talk to a human", ["en"], ["complaint"])
    assert request is not None
    assert request.reason == REASON_CUSTOMER_REQUEST


# --- Opt-out and opt-in ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", "opt_out"),
        ("Stop.", "opt_out"),
        ("  stop!!  ", "opt_out"),
        ("Unsubscribe", "opt_out"),
        ("stop all", "opt_out"),
        ("ARRET", "opt_out"),
        ("Arrêt", "opt_out"),
        ("¡Baja!", "opt_out"),
        ("sair", "opt_out"),
        ("Start", "opt_in"),
        ("unstop.", "opt_in"),
        ("please stop sending me these", None),
        ("stop it", None),
        ("stopping", None),
        ("Where do I start?", None),
        ("", None),
        ("...", None),
    ],
)
def test_opt_words_are_the_whole_message(text: str, expected: str | None) -> None:
    assert detect_opt_change(text, DEFAULT_OPT_OUT_WORDS, DEFAULT_OPT_IN_WORDS) == expected


def test_opt_words_come_from_the_lists_given() -> None:
    assert detect_opt_change("Basta ya", ["basta ya"], ["vuelve"]) == "opt_out"
    assert detect_opt_change("Vuelve", ["basta ya"], ["vuelve"]) == "opt_in"
    assert detect_opt_change("stop", ["basta ya"], ["vuelve"]) is None


def test_a_word_in_both_lists_opts_out() -> None:
    assert detect_opt_change("toggle", ["toggle"], ["toggle"]) == "opt_out"


# --- Greetings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "hi",
        "Hello!",
        "hey there",
        "bonjour",
        "Hola",
        "hallo",
        "olá",
        "ciao",
        "good morning",
        "Good evening everyone",
        "👋",
        "👋🏽",
        "hi 👋",
        "Hi, how are you?",
        "Buenos días",
        "Guten Tag!",
        "goedemorgen",
    ],
)
def test_greetings(text: str) -> None:
    assert is_greeting(text)


@pytest.mark.parametrize(
    "text",
    [
        "hi, where is my order?",
        "Hello, I want to return a jacket",
        "bonjour, quels sont vos horaires ?",
        "thanks",
        "there",
        "",
        "😊",
        "hi can you help me with my refund please",
        "High heels in size 38?",
    ],
)
def test_not_only_a_greeting(text: str) -> None:
    assert not is_greeting(text)


# --- Business hours -------------------------------------------------------------------

WEEKDAYS_9_TO_6: dict[str, Any] = {
    "timezone": "Europe/Paris",
    "days": {
        "mon": [["09:00", "18:00"]],
        "tue": [["09:00", "18:00"]],
        "wed": [["09:00", "18:00"]],
        "thu": [["09:00", "18:00"]],
        "fri": [["09:00", "12:30"], ["14:00", "18:00"]],
        "sat": [["10:00", "13:00"]],
    },
}


def paris(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=PARIS)


def test_no_business_hours_means_always_open() -> None:
    at = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)
    assert within_business_hours(None, at)
    assert next_opening(None, at) == at


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (paris(2025, 1, 6, 8, 59, 59), False),  # Monday
        (paris(2025, 1, 6, 9, 0), True),
        (paris(2025, 1, 6, 17, 59, 59), True),
        (paris(2025, 1, 6, 18, 0), False),  # the end is excluded
        (paris(2025, 1, 10, 12, 30), False),  # Friday lunch
        (paris(2025, 1, 10, 14, 0), True),
        (paris(2025, 1, 11, 12, 0), True),  # Saturday
        (paris(2025, 1, 12, 12, 0), False),  # Sunday: missing, so closed
    ],
)
def test_opening_ranges_include_their_start_and_exclude_their_end(
    at: datetime, expected: bool
) -> None:
    assert within_business_hours(WEEKDAYS_9_TO_6, at) is expected


def test_hours_are_read_in_the_business_timezone() -> None:
    # 08:30 in New York is 14:30 in Paris (both on winter time).
    new_york = datetime(2025, 1, 6, 8, 30, tzinfo=ZoneInfo("America/New_York"))
    assert within_business_hours(WEEKDAYS_9_TO_6, new_york)
    # 23:30 UTC on Monday is already Tuesday 00:30 in Paris.
    assert not within_business_hours(WEEKDAYS_9_TO_6, datetime(2025, 1, 6, 23, 30, tzinfo=UTC))


def test_hours_follow_daylight_saving_time() -> None:
    # Paris moves to summer time (UTC+2) on Sunday 30 March 2025.
    friday_before = datetime(2025, 3, 28, 7, 30, tzinfo=UTC)  # 08:30 in Paris
    monday_after = datetime(2025, 3, 31, 7, 30, tzinfo=UTC)  # 09:30 in Paris
    assert not within_business_hours(WEEKDAYS_9_TO_6, friday_before)
    assert within_business_hours(WEEKDAYS_9_TO_6, monday_after)
    opening = next_opening(WEEKDAYS_9_TO_6, paris(2025, 3, 29, 13, 0))  # Saturday, closing
    assert opening == datetime(2025, 3, 31, 7, 0, tzinfo=UTC)
    assert opening is not None
    assert opening.utcoffset() == timedelta(hours=2)
    assert (opening.hour, opening.minute) == (9, 0)


def test_next_opening() -> None:
    monday_open = paris(2025, 1, 6, 10, 0)
    assert next_opening(WEEKDAYS_9_TO_6, monday_open) == monday_open
    assert next_opening(WEEKDAYS_9_TO_6, paris(2025, 1, 6, 7, 0)) == paris(2025, 1, 6, 9, 0)
    assert next_opening(WEEKDAYS_9_TO_6, paris(2025, 1, 10, 13, 0)) == paris(2025, 1, 10, 14, 0)
    assert next_opening(WEEKDAYS_9_TO_6, paris(2025, 1, 10, 18, 0)) == paris(2025, 1, 11, 10, 0)
    saturday_evening = datetime(2025, 1, 11, 20, 0, tzinfo=UTC)
    opening = next_opening(WEEKDAYS_9_TO_6, saturday_evening)
    assert opening == paris(2025, 1, 13, 9, 0)
    assert opening is not None
    assert opening.tzinfo == PARIS


def test_overnight_opening_is_two_ranges_that_join() -> None:
    nights = {
        "timezone": "Europe/Paris",
        "days": {"mon": [["22:00", "24:00"]], "tue": [["00:00", "02:00"]]},
    }
    assert within_business_hours(nights, paris(2025, 1, 6, 23, 59, 59))
    assert within_business_hours(nights, paris(2025, 1, 7, 0, 0))
    assert within_business_hours(nights, paris(2025, 1, 7, 1, 59))
    assert not within_business_hours(nights, paris(2025, 1, 7, 2, 0))
    assert next_opening(nights, paris(2025, 1, 6, 23, 0)) == paris(2025, 1, 6, 23, 0)
    # Past Tuesday's range, the next is Monday night a week on.
    assert next_opening(nights, paris(2025, 1, 7, 2, 0)) == paris(2025, 1, 13, 22, 0)


def test_an_opening_time_the_clocks_skip_is_read_with_the_offset_before() -> None:
    # 02:30 does not exist in Paris on 30 March 2025: read as 02:30 UTC+1, 03:30 summer time.
    hours = {"timezone": "Europe/Paris", "days": {"sun": [["02:30", "05:00"]]}}
    opening = next_opening(hours, paris(2025, 3, 30, 1, 0))
    assert opening == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    assert opening is not None
    assert (opening.hour, opening.minute) == (3, 30)


def test_a_weekly_opening_already_over_today_is_next_week() -> None:
    mondays = {"timezone": "Europe/Paris", "days": {"mon": [["09:00", "18:00"]]}}
    assert next_opening(mondays, paris(2025, 1, 6, 19, 0)) == paris(2025, 1, 13, 9, 0)


def test_a_schedule_with_no_opening_never_opens() -> None:
    closed = {"timezone": "Europe/Paris", "days": {"mon": []}}
    at = paris(2025, 1, 6, 10, 0)
    assert not within_business_hours(closed, at)
    assert next_opening(closed, at) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        within_business_hours(WEEKDAYS_9_TO_6, datetime(2025, 1, 6, 10, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        next_opening(None, datetime(2025, 1, 6, 10, 0))


@pytest.mark.parametrize(
    "hours",
    [
        {"timezone": "Mars/Olympus", "days": {}},
        {"timezone": "Europe/Paris", "days": {"mon": [["18:00", "09:00"]]}},
        {"timezone": "Europe/Paris", "days": {"monday": [["09:00", "18:00"]]}},
    ],
)
def test_malformed_hours_are_refused_as_the_service_refuses_them(hours: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        within_business_hours(hours, paris(2025, 1, 6, 10, 0))
