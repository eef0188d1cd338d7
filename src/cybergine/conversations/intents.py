"""What a customer's message asks for before any knowledge search: a person, a human
review of an automated decision, a right over their data, no more messages (or messages
again), or just a hello; and whether the team is at work.

Pure functions: no database, no I/O, no settings.

**Matching.** Messages are compared in a normalised form: case-folded, accents stripped
(``é`` → ``e``, ``ß`` → ``ss``), English negative contractions expanded (``don't`` →
``do not``, ``can't`` → ``cannot``), then every run of punctuation, symbols and spaces
collapsed to one space. Phrases match on word boundaries only, so "humane", "agenda",
"reagent" and "personal" never stand for "human", "agent" or "person".

**Handoff** (:func:`detect_handoff`). Built-in phrases exist for English, French, German,
Spanish, Portuguese, Italian and Dutch; English always applies, the others when the base
language of one of the assistant's BCP-47 tags is theirs (``pt-BR`` → ``pt``). A message
asks for a person when:

- a request phrase appears anywhere in it: a verb of talking or connecting with a person
  ("talk to a human", "speak with someone", "connect me to an agent", "parler à un
  conseiller", "mit einem Mitarbeiter sprechen", "hablar con una persona", "falar com um
  atendente", "parlare con un operatore", "met een medewerker spreken"), a verb of
  wanting with a person ("I want a human", "je voudrais un conseiller"), or a phrase that
  only means a person ("real person", "live agent", "echter Mensch", "persona real");
- or the whole message is a person and nothing else, give or take politeness and
  greetings ("human", "Agent?", "a real person please", "operator", "customer service",
  "Mensch bitte"). A bare word inside a longer sentence does not count: "the agent at the
  store was rude" is not a request.

A phrase is ignored when, in the same clause (clauses end at ``, . ; : ! ?``), it directly
follows a negation, possibly through a verb of wanting ("I don't want to talk to a
human", "je ne veux pas parler à un humain", "no quiero hablar con un agente", "ich will
nicht mit einem Menschen sprechen"), or a question about who is talking ("are you a real
person?", "bist du ein echter Mensch?"). A question such as "why can't I talk to a
person?" still counts: missing a request for a person is worse than an unneeded handoff.

A request for **human review** of an automated decision (the right not to be subject to
solely automated decisions) is recognised by its own phrases: "human review", "reviewed
by a person", "I want a human to review this decision", "contest / appeal / challenge the
decision", "appeal" on its own, "I want to appeal", "not be subject to an automated
decision", and their equivalents in the languages above. It gives ``human_review=True``
and takes precedence over a plain request for a person.

The organisation's own ``extra_keywords`` match as whole words or phrases anywhere in the
message, normalised the same way, with no negation rule.

**Rights over one's data** (:func:`detect_data_request`, policy §14): "delete my data",
"what do you know about me?", "correct my name", "stop processing my data", "I object to
the processing of my data", "send me a copy of my data", by the phrases of
``intent_phrases.rights`` (one set per language and right), matched on word boundaries
anywhere in a clause and not right after a negation; English always applies, the other
languages as for a handoff. The answer names the language that matched.

**Opt-out and opt-in** (:func:`detect_opt_change`): the whole message, trimmed, case-folded,
accents stripped and punctuation removed at both ends, equals one of the words ("Stop."
→ opt-out; "please stop sending me these" → nothing). A word in both lists opts out.

**Business hours** (:func:`within_business_hours`, :func:`next_opening`): the assistant's
``{"timezone": ..., "days": {"mon": [["09:00", "18:00"]], ...}}``, read through
:func:`cybergine.assistants.business_hours.clean_business_hours` (a malformed value raises its
``InvalidInput``). Times are wall-clock times in that timezone, so opening hours follow
daylight saving time. A range is ``[start, end)`` within one day: it never crosses
midnight (the service refuses ``end <= start``; ``24:00`` ends a day). Overnight opening
is two ranges, ``"mon": [["22:00", "24:00"]], "tue": [["00:00", "02:00"]]``, which
behave as one. A missing day, or one with no ranges, is closed. An opening time that does
not exist on a day the clocks go forward (02:30 in Paris on the last Sunday of March) is
read with the offset in force before the change (03:30 summer time).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cybergine.assistants.business_hours import WEEKDAYS, clean_business_hours
from cybergine.conversations.intent_phrases import LANGUAGES, rights

__all__ = [
    "DEFAULT_OPT_IN_WORDS",
    "DEFAULT_OPT_OUT_WORDS",
    "HANDOFF_LANGUAGES",
    "REASON_CUSTOMER_REQUEST",
    "REASON_HUMAN_REVIEW",
    "REASON_KEYWORD",
    "DataRequest",
    "HandoffRequest",
    "detect_data_request",
    "detect_handoff",
    "detect_opt_change",
    "is_greeting",
    "next_opening",
    "within_business_hours",
]

REASON_CUSTOMER_REQUEST = "customer_request"  # asked for a person
REASON_HUMAN_REVIEW = "human_review"  # asked for a person to review an automated decision
REASON_KEYWORD = "keyword"  # used one of the organisation's handoff keywords

# Industry-standard SMS/WhatsApp keywords (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT)
# and their usual equivalents; compared after normalisation, so "ARRET" matches "arrêt".
DEFAULT_OPT_OUT_WORDS: tuple[str, ...] = (
    "stop",
    "stop all",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "opt out",
    "opt-out",
    "optout",
    "revoke",
    "arrêt",
    "arrêter",
    "désabonner",
    "désinscription",
    "stopp",
    "abmelden",
    "abbestellen",
    "baja",
    "darme de baja",
    "parar",
    "sair",
    "basta",
    "disiscrivimi",
    "afmelden",
    "uitschrijven",
)
DEFAULT_OPT_IN_WORDS: tuple[str, ...] = (
    "start",
    "unstop",
    "subscribe",
    "resubscribe",
    "opt in",
    "opt-in",
    "optin",
    "démarrer",
    "abonnieren",
    "alta",
    "darme de alta",
    "iscrivimi",
    "aanmelden",
)


@dataclass(frozen=True)
class HandoffRequest:
    """``reason``: one of the ``REASON_*`` codes; ``matched``: the phrase or keyword that
    matched, in normalised form."""

    reason: str
    human_review: bool
    matched: str


# --- Normalisation --------------------------------------------------------------------

_APOSTROPHE = re.compile(r"[\u2018\u2019\u02bc\u0060\u00b4]")
_CONTRACTIONS = (
    (re.compile(r"\bcan'?t\b"), "cannot"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"\b(do|does|did|is|are|was|were|would|should|could)nt\b"), r"\1 not"),
)
_NON_WORD = re.compile(r"[\W_]+")
# Where a clause ends: a negation or a question in one clause says nothing of the next.
_CLAUSE_END = re.compile(r"[.!?;:,\n\r\u00a1\u00bf\u2026()\"]+|\s[-\u2013\u2014]+\s")


def _fold(text: str) -> str:
    text = _APOSTROPHE.sub("'", text.casefold())
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text


def fold(text: str) -> str:
    """A message as phrases are matched against it: case-folded, accents stripped,
    negative contractions expanded; signs and punctuation kept (product questions read
    "€" and "$")."""
    return _fold(text)


def _collapse(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", text).split())


def _normalise(text: str) -> str:
    return _collapse(_fold(text))


def _clauses(text: str) -> list[str]:
    return [c for c in (_collapse(part) for part in _CLAUSE_END.split(_fold(text))) if c]


def _alternation(patterns: Iterable[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


# The phrase lists live in intent_phrases/, one module per language.
HANDOFF_LANGUAGES: frozenset[str] = frozenset(LANGUAGES)

# A bare request is a short message; longer ones are left to the phrases.
_MAX_BARE_WORDS = 12
# A phrase must not run on into a word, nor be a possessive ("the agent's number").
_END = r"(?!\w)(?! s\b)"


@dataclass(frozen=True)
class _Matcher:
    review: re.Pattern[str]
    handoff: re.Pattern[str]
    bare_review: re.Pattern[str]
    bare: re.Pattern[str]
    negations: tuple[re.Pattern[str], ...]


def _base_language(tag: str) -> str:
    return tag.strip().replace("_", "-").split("-", 1)[0].lower()


@lru_cache(maxsize=128)
def _matcher(codes: tuple[str, ...]) -> _Matcher:
    phrases = [LANGUAGES[code] for code in codes]

    def anywhere(patterns: Iterable[str]) -> re.Pattern[str]:
        return re.compile(rf"(?<!\w)(?:{_alternation(patterns)}){_END}")

    fillers = _alternation(sorted({f for p in phrases for f in p.fillers}, key=len, reverse=True))

    def whole(patterns: Iterable[str]) -> re.Pattern[str]:
        return re.compile(rf"(?:(?:{fillers}) )*(?:{_alternation(patterns)})(?: (?:{fillers}))*")

    return _Matcher(
        review=anywhere(r for p in phrases for r in p.review),
        handoff=anywhere(h for p in phrases for h in p.handoff),
        bare_review=whole(b for p in phrases for b in p.bare_review),
        bare=whole(b for p in phrases for b in p.bare),
        negations=tuple(re.compile(p.negation) for p in phrases),
    )


def _languages(languages: Sequence[str]) -> tuple[str, ...]:
    wanted = {"en"} | {_base_language(tag) for tag in languages}
    return tuple(code for code in LANGUAGES if code in wanted)


def phrase_languages(languages: Sequence[str]) -> tuple[str, ...]:
    """The built-in phrase languages that apply to an assistant of ``languages``:
    English always, the others when one of its tags is theirs."""
    return _languages(languages)


def _first_phrase(
    pattern: re.Pattern[str], clauses: Sequence[str], negations: Sequence[re.Pattern[str]]
) -> str | None:
    for clause in clauses:
        for match in pattern.finditer(clause):
            before = clause[: match.start()].rstrip()
            if not any(negation.search(before) for negation in negations):
                return match.group(0)
    return None


@lru_cache(maxsize=256)
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    normalised = sorted({k for k in (_normalise(word) for word in keywords) if k}, key=len)
    if not normalised:
        return None
    alternation = "|".join(re.escape(k) for k in reversed(normalised))
    return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)")


def detect_handoff(
    text: str, languages: Sequence[str], extra_keywords: Sequence[str] = ()
) -> HandoffRequest | None:
    """Whether the customer asks for a person (or for a person to review an automated
    decision), by the rules in the module docstring; ``None`` if not."""
    normalised = _normalise(text)
    if not normalised:
        return None
    matcher = _matcher(_languages(languages))
    clauses = _clauses(text)
    short = len(normalised.split()) <= _MAX_BARE_WORDS

    found = _first_phrase(matcher.review, clauses, matcher.negations)
    if found is None and short and matcher.bare_review.fullmatch(normalised):
        found = normalised
    if found is not None:
        return HandoffRequest(REASON_HUMAN_REVIEW, human_review=True, matched=found)

    found = _first_phrase(matcher.handoff, clauses, matcher.negations)
    if found is None and short and matcher.bare.fullmatch(normalised):
        found = normalised
    if found is not None:
        return HandoffRequest(REASON_CUSTOMER_REQUEST, human_review=False, matched=found)

    keywords = _keyword_pattern(tuple(extra_keywords))
    keyword = keywords.search(normalised) if keywords is not None else None
    if keyword is not None:
        return HandoffRequest(REASON_KEYWORD, human_review=False, matched=keyword.group(0))
    return None


# --- Rights over one's data (policy §14) -----------------------------------------------


@dataclass(frozen=True)
class DataRequest:
    """``kind``: a ``privacy_requests.kind`` value; ``language``: the base language of the
    phrase that matched (the customer's, for the answer)."""

    kind: str
    language: str


@lru_cache(maxsize=1)
def _rights_patterns() -> dict[tuple[str, str], re.Pattern[str]]:
    # Word boundaries only: French "mes donnees s'il vous plait" is no possessive.
    return {
        (kind, code): re.compile(rf"(?<!\w)(?:{_alternation(phrases[kind])})(?!\w)")
        for code, phrases in rights.RIGHTS.items()
        for kind in rights.KINDS
        if phrases.get(kind)
    }


def detect_data_request(text: str, languages: Sequence[str]) -> DataRequest | None:
    """The right over their data a customer's message exercises ("delete my data":
    erasure; "what do you know about me?": access), and in which language, by the
    phrases of ``intent_phrases.rights`` in English and the assistant's languages;
    ``None`` if none. Rights are tried in ``rights.KINDS`` order, English first within
    each. A phrase right after a negation in its clause does not count, as for a
    handoff."""
    if not _normalise(text):
        return None
    codes = _languages(languages)
    negations = _matcher(codes).negations
    clauses = _clauses(text)
    patterns = _rights_patterns()
    for kind in rights.KINDS:
        for code in codes:
            pattern = patterns.get((kind, code))
            if pattern is not None and _first_phrase(pattern, clauses, negations) is not None:
                return DataRequest(kind, code)
    return None


# --- Opt-out and opt-in ---------------------------------------------------------------

_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")


def _opt_form(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.strip().casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_EDGE_PUNCTUATION.sub("", text).split())


def detect_opt_change(
    text: str, opt_out_words: Sequence[str], opt_in_words: Sequence[str]
) -> Literal["opt_out", "opt_in"] | None:
    """``"opt_out"`` or ``"opt_in"`` when the whole message is one of the words (compared
    trimmed, case-folded, without accents or surrounding punctuation); opting out wins
    when a word is in both lists."""
    message = _opt_form(text)
    if not message:
        return None
    if message in _opt_forms(tuple(opt_out_words)):
        return "opt_out"
    if message in _opt_forms(tuple(opt_in_words)):
        return "opt_in"
    return None


@lru_cache(maxsize=256)
def _opt_forms(words: tuple[str, ...]) -> frozenset[str]:
    """The words' compared forms, worked out once per list (it is checked on every
    inbound message)."""
    return frozenset(_opt_form(word) for word in words)


# --- Greetings ------------------------------------------------------------------------

_GREETINGS = (
    r"hi+|hiya|hey+|heya|hello+|helo|hallo+|yo|howdy|greetings|hi there|hello there"
    r"|hey there|good (?:morning|afternoon|evening|day)|morning|afternoon|evening"
    r"|bonjour|bonsoir|rebonjour|salut|coucou|allo"
    r"|guten (?:morgen|tag|abend)|moin(?: moin)?|servus|gruss gott|gruezi|gruss dich"
    r"|hola|buenas|buenos dias|buenas (?:tardes|noches)|buen dia"
    r"|ola|oi|oie|bom dia|boa (?:tarde|noite)"
    r"|ciao|salve|buongiorno|buonasera|buon pomeriggio"
    r"|hoi|goedemorgen|goedemiddag|goedenavond|goedendag|dag|hej"
)
_SMALL_TALK = (
    r"how are (?:you|u|ya)(?: doing| today)?|how r u|how s it going|what s up|whats up|sup"
    r"|ca va|comment ca va|comment allez vous|wie geht s|wie gehts|wie geht es (?:dir|ihnen)"
    r"|que tal|como estas|como esta|tudo bem|tudo bom|como vai|come stai|come va"
    r"|hoe gaat het|alles goed"
)
_GREETING_EXTRAS = (
    r"there|all|everyone|everybody|team|guys|folks|friend|friends|bot|assistant|again|you"
    r"|y all|a tous|tout le monde|a todos|todos|zusammen|allemaal|a tutti|tutti|pessoal"
    r"|gente|and|et|und|y|e|en|en dan"
)
_GREETING_ITEM = rf"(?:{_GREETINGS}|{_SMALL_TALK}|{_GREETING_EXTRAS})"
_GREETING_ONLY = re.compile(rf"{_GREETING_ITEM}(?: {_GREETING_ITEM})*")
_GREETING_WORD = re.compile(rf"(?<!\w)(?:{_GREETINGS}|{_SMALL_TALK})(?!\w)")
# The waving hand, with any skin tone, variation selector or zero-width joiner.
_WAVE = re.compile("\U0001f44b[\U0001f3fb-\U0001f3ff\ufe0f\u200d]*")
_MAX_GREETING_WORDS = 8


def is_greeting(text: str) -> bool:
    """A message that is only a greeting ("hi", "Hello!", "hey there", "bonjour",
    "hola", "olá", "good morning 👋", "hi, how are you?"), in any of the built-in
    languages: answered with the assistant's greeting rather than a knowledge search.
    "hi, where is my order?" is not one."""
    waved = bool(_WAVE.search(text))
    normalised = _normalise(_WAVE.sub(" ", text))
    if not normalised:
        return waved
    if len(normalised.split()) > _MAX_GREETING_WORDS:
        return False
    return bool(_GREETING_ONLY.fullmatch(normalised)) and (
        waved or _GREETING_WORD.search(normalised) is not None
    )


# --- Business hours -------------------------------------------------------------------


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _schedule(
    business_hours: Mapping[str, Any],
) -> tuple[ZoneInfo, dict[str, list[tuple[int, int]]]]:
    cleaned = clean_business_hours(business_hours)
    days = {
        day: [(_minutes(start), _minutes(end)) for start, end in ranges]
        for day, ranges in cleaned["days"].items()
    }
    return ZoneInfo(cleaned["timezone"]), days


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("business hours are checked against a timezone-aware datetime")
    return at


def within_business_hours(business_hours: Mapping[str, Any] | None, at: datetime) -> bool:
    """Whether ``at`` (timezone-aware) falls in an opening range; ``None``: always open."""
    _aware(at)
    if business_hours is None:
        return True
    zone, days = _schedule(business_hours)
    local = at.astimezone(zone)
    second = local.hour * 3600 + local.minute * 60 + local.second
    return any(
        start * 60 <= second < end * 60 for start, end in days.get(WEEKDAYS[local.weekday()], ())
    )


def next_opening(business_hours: Mapping[str, Any] | None, at: datetime) -> datetime | None:
    """The first moment from ``at`` (timezone-aware) on when the team is at work: ``at``
    itself when open then (always, for ``None``), else the start of the next range, in the
    business hours' timezone; ``None`` when no day has any opening range."""
    _aware(at)
    if business_hours is None or within_business_hours(business_hours, at):
        return at
    zone, days = _schedule(business_hours)
    instant = at.astimezone(UTC)
    today = at.astimezone(zone).date()
    # Eight days: today's ranges may all be over, and next week's same day may be the
    # only open one.
    for offset in range(8):
        day = today + timedelta(days=offset)
        for start, _end in days.get(WEEKDAYS[day.weekday()], ()):
            wall = datetime.combine(day, time(start // 60, start % 60), tzinfo=zone)
            # Through UTC: compares real instants, and moves a time the clocks skip forward.
            opening = wall.astimezone(UTC)
            if opening > instant:
                return opening.astimezone(zone)
    return None
