"""What a customer's message asks for before any knowledge search: a person, a human
review of an automated decision, no more messages (or messages again), or just a hello;
and whether the team is at work.

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

__all__ = [
    "DEFAULT_OPT_IN_WORDS",
    "DEFAULT_OPT_OUT_WORDS",
    "HANDOFF_LANGUAGES",
    "REASON_CUSTOMER_REQUEST",
    "REASON_HUMAN_REVIEW",
    "REASON_KEYWORD",
    "HandoffRequest",
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


def _collapse(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", text).split())


def _normalise(text: str) -> str:
    return _collapse(_fold(text))


def _clauses(text: str) -> list[str]:
    return [c for c in (_collapse(part) for part in _CLAUSE_END.split(_fold(text))) if c]


def _alternation(patterns: Iterable[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


# --- Phrase lists ---------------------------------------------------------------------
#
# Patterns are regular expressions over normalised text: lower case, no accents, words
# separated by single spaces. Each language gives:
# - handoff / review: phrases matched anywhere, on word boundaries;
# - bare / bare_review: what a message may consist of (with fillers around it);
# - fillers: politeness and greetings allowed around a bare request;
# - negation: the end of a clause that cancels a phrase right after it.


@dataclass(frozen=True)
class _Phrases:
    handoff: tuple[str, ...]
    review: tuple[str, ...]
    bare: tuple[str, ...]
    bare_review: tuple[str, ...]
    fillers: tuple[str, ...]
    negation: str


def _negation(negators: str, desire: str, particle: str, identity: str) -> str:
    return (
        rf"(?:^| )(?:(?:{negators})(?: (?:{desire}))?(?: (?:{particle}))?"
        rf"|(?:{identity})(?: \w+){{0,2}})$"
    )


# English.
_EN_PEOPLE = (
    r"(?:human|person|agent|operator|representative|rep|advisor|adviser|consultant|manager"
    r"|supervisor|employee|staff member|team member|member of (?:staff|the team|your team)"
    r"|customer (?:service|support|care)(?: (?:agent|representative|rep|team|person))?"
    r"|support (?:agent|team|staff|person)|human being)s?"
)
_EN_DET = (
    r"(?:(?:a|an|the|some|any|your|one of (?:the|your)|real|live|actual|human|proper"
    r"|genuine) )*"
)
_EN_ANYONE = rf"{_EN_DET}(?:{_EN_PEOPLE}|people|someone|somebody|anyone|anybody)"
_EN_SOMEONE_SPECIFIC = rf"{_EN_DET}{_EN_PEOPLE}"
_EN_CORE = r"(?:human|person|agent|operator|representative)s?"
_EN_REVIEWER = (
    r"(?:a |an |one of your |some )?(?:real |actual |live )?(?:human|person|people|staff"
    r"|member of (?:staff|the team|your team)|team member|employee|manager|supervisor"
    r"|someone|somebody)"
)
_EN_DECISION = (
    r"(?:decision|refusal|rejection|denial|verdict|ruling|determination|ban|suspension)s?"
)

_EN = _Phrases(
    handoff=(
        rf"(?:talk|speak|chat|get through|be put through|be transferred|be connected"
        rf"|communicate) (?:to|with) {_EN_ANYONE}",
        rf"(?:connect|transfer|put|pass|send|forward|escalate|hand) (?:me|this|it|my"
        rf" (?:case|request|question|complaint))(?: over| through| on)? (?:to|with)"
        rf" {_EN_ANYONE}",
        rf"(?:(?:would|d) (?:like|prefer|rather have)|want|need|request|demand|get me|give me"
        rf"|find me|bring me|(?:can|could|may) i (?:have|get|see|reach|contact))"
        rf" {_EN_SOMEONE_SPECIFIC}",
        rf"(?:contact|reach|call) (?:a |an )?(?:real |live |actual )?{_EN_CORE}",
        r"(?:real|actual|live|genuine) (?:human|person|people|agent|operator|representative)s?",
        r"human (?:agent|operator|representative|assistance|help|support|contact)s?",
        # "is there a person I can talk to?", not "is there a person limit?"
        rf"is there (?:a |an |any )?(?:real |live |actual )?{_EN_CORE}"
        r"(?=$| (?:i|we|to|who|that|available|there|here|around|online|please)\b)",
        r"is (?:there )?(?:anyone|anybody|someone|somebody) (?:there|here|real|human|available)",
    ),
    review=(
        r"(?:human|manual) (?:review|reviewer|oversight|intervention|reconsideration"
        r"|re examination|reassessment|assessment|evaluation|decision|judgement|judgment)",
        rf"(?:review(?:ed)?|reconsider(?:ed)?|re examined?|reassess(?:ed)?|re evaluated?"
        rf"|evaluated|assessed|decided) by {_EN_REVIEWER}",
        r"(?:human|person|staff member|member of staff|manager|supervisor)"
        r" (?:to |should |must |can |could |would |will |please )?"
        r"(?:review|reconsider|re examine|reassess|re evaluate|double check)",
        rf"(?:contest|dispute|challenge|appeal|appeal against|object to|oppose|overturn"
        rf"|reverse|reconsider|review|revisit|re examine|reassess|question)"
        rf" (?:(?:the|this|that|your|my|its|an|a|their) )?(?:(?:automated|automatic|ai|bot"
        rf"|computer|algorithmic|system|machine|credit|refund|account) )?{_EN_DECISION}",
        r"(?:want|wish|like|need|going|intend|able|right|possible|how) to appeal",
        r"(?:how|where|can|may|could) (?:do |can |could )?i appeal",
        r"(?:file|lodge|submit|make|start|open) (?:an |my )?appeal",
        r"(?:not|never) (?:to )?be (?:subject|subjected) to (?:an |a )?(?:solely |purely"
        r" |fully |entirely )?(?:automated|automatic)",
        r"(?:object|objection|objecting) to (?:the |this |an |a )?(?:solely |purely |fully )?"
        r"(?:automated|automatic|ai)",
        r"(?:article|art) 22 (?:of (?:the )?)?gdpr",
    ),
    bare=(
        rf"(?:(?:i )?(?:want|need) |give me |get me |(?:talk|speak|chat) (?:to|with) )?"
        rf"{_EN_ANYONE}",
    ),
    bare_review=(
        r"(?:i (?:want to |would like to |d like to )?)?(?:appeal|contest|object)"
        r"(?: (?:this|that|it))?",
        r"(?:human|manual) review",
        r"review by (?:a )?(?:human|person)",
    ),
    fillers=(
        "please",
        "pls",
        "plz",
        "now",
        "right now",
        "asap",
        "immediately",
        "urgent",
        "urgently",
        "thanks",
        "thank you",
        "thx",
        "ty",
        "hi",
        "hello",
        "hey",
        "ok",
        "okay",
        "yes",
        "yeah",
        "just",
        "only",
        "there",
        "here",
    ),
    negation=_negation(
        r"not|never|no longer",
        r"want|need|wish|like|care|going",
        r"to",
        r"are you|are u|r u|is this|is that|is it|you are|you re|u r|i am|i m|was that"
        r"|were you|am i (?:talking|speaking|chatting) (?:to|with)",
    ),
)

# French.
_FR_PEOPLE = (
    r"(?:humain|etre humain|personne(?: reelle| physique)?|vraie personne|conseiller|conseillere"
    r"|agent|operateur|operatrice|interlocuteur|interlocutrice|responsable|manager|superviseur"
    r"|employe|employee|technicien|technicienne|service (?:client|clientele|apres vente)"
    r"|membre de (?:l )?equipe|(?:vrai|vraie) (?:humain|personne|conseiller|conseillere))s?"
)
_FR_DET = r"(?:(?:un|une|le|la|l|les|des|du|au|aux|votre|vos|ton|ta|vrai|vraie|veritable) )*"
_FR_ANYONE = rf"{_FR_DET}(?:{_FR_PEOPLE}|quelqu un|quelqu une|qqn)"
_FR_DECISION_DET = r"(?:(?:la|cette|votre|ma|une|le|ce|l|de|du|d) )*"

_FR = _Phrases(
    handoff=(
        rf"(?:parler|discuter|echanger|communiquer|causer|chatter|dialoguer|entrer en contact"
        rf"|etre mise? en (?:relation|contact)|etre transferee?|etre redirigee?)"
        rf"(?: (?:a|avec|au|aux|vers))? {_FR_ANYONE}",
        rf"(?:veux|voudrais|voudrai|souhaite|souhaiterais|aimerais|demande|exige|prefere"
        rf"|prefererais|besoin d|besoin de|passez moi|passe moi|mettez moi en relation avec"
        rf"|mets moi en relation avec|transferez moi (?:a|vers)|transfere moi (?:a|vers)"
        rf"|redirigez moi vers|joindre|contacter|avoir) {_FR_DET}{_FR_PEOPLE}",
        r"vraie personne|vrai humain|etre humain|personne reelle|personne physique"
        r"|(?:agent|conseiller|conseillere|operateur|interlocuteur) humain",
    ),
    review=(
        r"(?:examen|revue|reexamen|verification|intervention|controle|decision|validation"
        r"|evaluation|analyse|supervision) (?:par un )?humaine?",
        r"(?:examinee?|revue?|reexaminee?|verifiee?|reconsideree?|reevaluee?|traitee?|analysee?"
        r"|prise?) par (?:un |une |l |le |la |des )?(?:vraie? )?(?:humain|personne"
        r"|etre humain|conseiller|conseillere|agent|employe|membre)",
        r"(?:humain|personne|conseiller|conseillere) (?:pour |qui )?(?:examine|reexamine"
        r"|revoie|revoit|verifie|reconsidere|reevalue|etudie)",
        rf"(?:contester|conteste|contestation|faire appel de|appel de|recours contre|revoir"
        rf"|reexaminer|reconsiderer|reevaluer|m opposer a|opposition a|remettre en cause"
        rf"|remets en cause|remettre en question) {_FR_DECISION_DET}"
        rf"(?:decision|refus|rejet|resultat|verdict|suspension|blocage|sanction)s?",
        r"(?:faire|deposer|former|introduire) (?:un )?(?:appel|recours)",
        r"(?:droit|voie)s? de recours",
        r"(?:veux|voudrais|souhaite|peux|comment|aimerais) (?:faire appel|contester)",
        r"(?:ne pas|pas) (?:faire l objet|etre soumise?) (?:a |d )?(?:une )?decision"
        r" (?:entierement |uniquement |purement )?automatisee",
    ),
    bare=(rf"(?:je (?:veux|voudrais|souhaite) )?{_FR_ANYONE}",),
    bare_review=(
        r"(?:je (?:veux|voudrais|souhaite) )?(?:faire appel|contester|un recours|recours"
        r"|faire un recours|revue humaine|examen humain)",
    ),
    fillers=(
        "s il vous plait",
        "s il te plait",
        "svp",
        "stp",
        "merci",
        "bonjour",
        "bonsoir",
        "salut",
        "maintenant",
        "tout de suite",
        "vite",
        "oui",
        "urgent",
        "juste",
    ),
    negation=_negation(
        r"pas|jamais|plus|ne|n",
        r"besoin|envie",
        r"de|d",
        r"es tu|etes vous|tu es|vous etes|t es|c est|est ce|je parle (?:a|avec)|je suis",
    ),
)

# German (umlauts are folded: "Prüfung" is "prufung", "möchte" is "mochte").
_DE_PEOPLE = (
    r"(?:mensch(?:en)?|person|mitarbeiter(?:in|innen|n)?|berater(?:in)?"
    r"|ansprechpartner(?:in)?|kundenservice|kundendienst|kundensupport|kundenbetreuer(?:in)?"
    r"|kundenberater(?:in)?|support mitarbeiter(?:in)?|servicemitarbeiter(?:in)?"
    r"|sachbearbeiter(?:in)?|agent(?:en|in)?|operator|vorgesetzte[nr]?|verantwortliche[nr]?"
    r"|(?:echte|menschliche)[nmr]? (?:mensch(?:en)?|person|mitarbeiter(?:in)?"
    r"|berater(?:in)?|ansprechpartner(?:in)?))"
)
_DE_DET = (
    r"(?:(?:ein|eine|einen|einem|einer|der|die|das|den|dem|ihrem|ihrer|ihren|ihr|eurem|euren"
    r"|echten|richtigen|richtiger|richtige|wirklichen|lebendigen|menschlichen) )*"
)
_DE_ANYONE = rf"{_DE_DET}(?:{_DE_PEOPLE}|jemand(?:em|en)?|irgendjemand(?:em|en)?|irgendwem)"
_DE_HUMAN = r"(?:mensch(?:en)?|mitarbeiter(?:in)?|person|sachbearbeiter(?:in)?)"
_DE_DECISION = r"(?:entscheidung|ablehnung|bescheid|sperrung|sperre|kundigung)"

_DE = _Phrases(
    handoff=(
        rf"(?:mit|zu|an) {_DE_ANYONE} (?:sprechen|reden|chatten|schreiben|telefonieren"
        rf"|verbunden werden|verbinden|kommunizieren|durchgestellt werden"
        rf"|weitergeleitet werden)",
        rf"(?:sprechen|reden|chatten|verbinden sie mich|verbinde mich|verbindet mich"
        rf"|leiten sie mich|leite mich|stellen sie mich) (?:bitte )?(?:mit|zu|an|durch zu"
        rf"|weiter an) {_DE_ANYONE}",
        rf"(?:will|mochte|mochten|brauche|benotige|hatte gerne?|wunsche|verlange|fordere)"
        rf" (?:(?:gerne?|bitte|jetzt|sofort) )?{_DE_DET}{_DE_PEOPLE}",
        r"(?:echte|richtige|lebendige)[nmr]? (?:mensch(?:en)?|person)"
        r"|menschliche[nmr]? (?:mitarbeiter(?:in)?|ansprechpartner(?:in)?|berater(?:in)?"
        r"|hilfe|unterstutzung|kontakt|betreuung)",
    ),
    review=(
        r"(?:menschliche|manuelle)[nmrs]? (?:uberprufung|prufung|entscheidung|bearbeitung"
        r"|kontrolle|bewertung|einschatzung|begutachtung|nachprufung)",
        rf"(?:von|durch) (?:(?:einem|einen|einer|eine|echten) )*{_DE_HUMAN}(?: \w+){{0,3}}"
        rf" (?:uberpruft|gepruft|nachgepruft|uberprufen|prufen|entschieden|bewertet"
        rf"|kontrolliert|angesehen|angeschaut)",
        rf"{_DE_HUMAN}(?: (?:die|diese|meine|den|diesen|meinen|das|dies))?"
        rf"(?: (?:{_DE_DECISION}|fall|sache))? (?:uberpruft|uberprufen|nachpruft|nachprufen"
        rf"|pruft|prufen|uberdenkt|uberdenken)",
        rf"{_DE_DECISION} (?:anfechten|anzufechten|widersprechen|beanstanden"
        rf"|uberprufen lassen|prufen lassen)",
        rf"(?:fechte|widerspreche) (?:(?:die|der|diese|dieser|ihre|ihrer) )?{_DE_DECISION}",
        r"(?:widerspruch|einspruch) (?:gegen|einlegen|erheben|einreichen)",
        rf"gegen (?:die |diese )?{_DE_DECISION} (?:vorgehen|widerspruch|einspruch)",
        r"(?:keiner|nicht einer) (?:ausschliesslich |rein |vollstandig )?"
        r"(?:automatisierten|automatischen) (?:einzel)?entscheidung",
    ),
    bare=(rf"(?:ich (?:will|mochte|brauche) )?{_DE_ANYONE}",),
    bare_review=(
        r"(?:ich (?:will|mochte) )?(?:widerspruch(?: einlegen)?|einspruch(?: einlegen)?"
        r"|anfechten|menschliche (?:uberprufung|prufung))",
    ),
    fillers=(
        "bitte",
        "danke",
        "dankeschon",
        "hallo",
        "jetzt",
        "sofort",
        "ja",
        "gerne",
        "gern",
        "schnell",
        "dringend",
        "nur",
        "mal",
    ),
    negation=_negation(
        r"nicht|kein|keine|keinen|keinem|keiner|nie|niemals",
        r"will|mochte|brauche|muss",
        r"zu",
        r"bist du|sind sie|ist das|du bist|sie sind|bin ich|ich bin|spreche ich|rede ich"
        r"|chatte ich",
    ),
)

# Spanish.
_ES_PEOPLE = (
    r"(?:humano|ser humano|persona(?: real| de verdad| fisica)?|agente|asesora?|operadora?"
    r"|representante|ejecutiv[oa]|encargad[oa]|supervisora?|gerente|emplead[oa]"
    r"|(?:servicio|atencion) al cliente|soporte(?: tecnico)?|especialista|personal)(?:e?s)?"
)
_ES_DET = (
    r"(?:(?:un|una|el|la|los|las|al|a|algun|alguna|su|sus|tu|tus|vuestro|vuestra|otro|otra"
    r"|verdadero|verdadera) )*"
)
_ES_ANYONE = rf"{_ES_DET}(?:{_ES_PEOPLE}|alguien)"
_ES_DECISION = (
    r"(?:decision|denegacion|rechazo|resolucion|negativa|suspension|bloqueo|sancion)(?:es)?"
)

_ES = _Phrases(
    handoff=(
        rf"(?:hablar|hable|conversar|chatear|charlar|platicar|comunicarme|comunicarse|contactar"
        rf"|contactarme|ponerme en contacto|ser atendid[oa]|ser transferid[oa])"
        rf"(?: (?:con|a|al|por))? {_ES_ANYONE}",
        rf"(?:quiero|quisiera|necesito|deseo|pido|exijo|prefiero|me pasas? con"
        rf"|me puedes? pasar con|paseme con|pasame con|comuniqueme con|comunicame con"
        rf"|me comunicas? con|transfiereme (?:a|con)|transfierame (?:a|con)|ponme con"
        rf"|pongame con) {_ES_DET}{_ES_PEOPLE}",
        r"persona real|persona de verdad|ser humano|(?:agente|asesora?|operadora?) humano"
        r"|atencion (?:humana|personalizada)",
    ),
    review=(
        r"(?:revision|intervencion|evaluacion|decision|supervision|valoracion|analisis)"
        r" humana?",
        r"(?:revisad|evaluad|examinad|reconsiderad|decidid|analizad|valorad|tomad)[oa]s? por"
        r" (?:un |una |el |la )?(?:humano|persona|ser humano|agente|emplead[oa]|asesora?)",
        r"(?:humano|persona|asesora?|agente) (?:que )?(?:revise|reconsidere|evalue|examine"
        r"|analice|reevalue|vuelva a revisar)",
        rf"(?:impugnar|impugno|recurrir|recurro|apelar|apelo|reclamar contra|cuestionar|revisar"
        rf"|reconsiderar|objetar|oponerme a|me opongo a|revocar|anular|revertir)(?: contra)?"
        rf" (?:(?:la|esta|esa|su|tu|mi|el|este|ese|de la|de esta) )?{_ES_DECISION}",
        r"(?:presentar|interponer|poner|hacer) (?:un |una )?(?:recurso|apelacion)",
        r"(?:quiero|deseo|quisiera|puedo|como puedo|necesito) (?:apelar|recurrir|impugnar)",
        r"derecho (?:a|de) (?:apelar|recurrir|impugnar)",
        r"no ser objeto de (?:una )?decision(?:es)? (?:\w+ ){0,6}?automatizadas?",
    ),
    bare=(rf"(?:(?:quiero|necesito) )?{_ES_ANYONE}",),
    bare_review=(r"(?:quiero )?(?:apelar|recurrir|impugnar|apelacion|revision humana)",),
    fillers=(
        "por favor",
        "porfa",
        "porfavor",
        "xfa",
        "plis",
        "gracias",
        "hola",
        "ahora",
        "ahora mismo",
        "ya",
        "si",
        "urgente",
        "rapido",
        "solo",
    ),
    negation=_negation(
        r"no|nunca|jamas",
        r"quiero|necesito|deseo|quisiera|me hace falta|hace falta",
        r"de",
        r"eres|es usted|usted es|sois|estoy hablando con|hablo con|soy",
    ),
)

# Portuguese.
_PT_PEOPLE = (
    r"(?:humano|ser humano|pessoa(?: real| de verdade| fisica)?|atendente|agente|operadora?"
    r"|consultora?|representante|funcionari[oa]|gerente|supervisora?|responsavel|especialista"
    r"|atendimento(?: humano| ao cliente| personalizado)?|suporte(?: tecnico)?|sac)(?:e?s)?"
)
_PT_DET = (
    r"(?:(?:um|uma|o|a|os|as|algum|alguma|seu|sua|teu|tua|outro|outra|verdadeiro"
    r"|verdadeira|ao) )*"
)
_PT_ANYONE = rf"{_PT_DET}(?:{_PT_PEOPLE}|alguem)"
_PT_DECISION = (
    r"(?:decisao|recusa|negativa|rejeicao|resultado|indeferimento|suspensao|bloqueio)(?:es)?"
)

_PT = _Phrases(
    handoff=(
        rf"(?:falar|fale|conversar|papear|comunicar me|comunicar|contatar|contactar"
        rf"|entrar em contato|ser atendid[oa]|ser transferid[oa]|ser encaminhad[oa])"
        rf"(?: (?:com|a|ao|para|por))? {_PT_ANYONE}",
        rf"(?:quero|queria|gostaria de|preciso de|preciso|desejo|peco|exijo|prefiro"
        rf"|me passa para|me passe para|me transfere para|me transfira para|me encaminha para"
        rf"|me encaminhe para|me coloca com|me coloque com|chama|chame|chamar)"
        rf" {_PT_DET}{_PT_PEOPLE}",
        r"pessoa real|pessoa de verdade|ser humano|atendimento humano|atendimento humanizado"
        r"|(?:atendente|agente|operador) humano",
    ),
    review=(
        r"(?:revisao|intervencao|avaliacao|decisao|analise|supervisao|reanalise) humana",
        r"(?:revist|revisad|avaliad|analisad|reanalisad|reconsiderad|decidid|tomad)[oa]s? por"
        r" (?:um |uma |o |a )?(?:humano|pessoa|ser humano|atendente|funcionari[oa]|agente)",
        r"(?:humano|pessoa|atendente|funcionario|agente) (?:que )?(?:revise|reveja|analise"
        r"|reanalise|avalie|reavalie|reconsidere|examine)",
        rf"(?:contestar|contesto|recorrer|recorro|apelar|questionar|rever|revisar|reconsiderar"
        rf"|impugnar|reverter|me opor a|me oponho a)(?: contra)? (?:(?:a|esta|essa|sua|minha"
        rf"|o|este|esse|da|desta|dessa|do|deste|desse) )?{_PT_DECISION}",
        r"(?:entrar com|abrir|apresentar|fazer|interpor) (?:um |uma )?(?:recurso|contestacao"
        r"|apelacao)",
        r"(?:quero|gostaria de|posso|como posso|como faco para|preciso) (?:recorrer|apelar"
        r"|contestar)",
        r"direito (?:a|de) (?:recorrer|contestar|revisao)",
        r"nao (?:ser|ficar) sujeit[oa] a (?:uma )?decisao(?:es)? (?:\w+ ){0,6}?automatizadas?",
    ),
    bare=(rf"(?:(?:quero|preciso de|preciso) )?{_PT_ANYONE}",),
    bare_review=(r"(?:quero )?(?:recorrer|apelar|contestar|recurso|revisao humana)",),
    fillers=(
        "por favor",
        "pf",
        "pfv",
        "pfvr",
        "obrigado",
        "obrigada",
        "obg",
        "ola",
        "oi",
        "agora",
        "agora mesmo",
        "ja",
        "sim",
        "urgente",
        "so",
        "rapido",
    ),
    negation=_negation(
        r"nao|nunca|jamais",
        r"quero|preciso|desejo|queria|gostaria",
        r"de",
        r"voce e|vc e|voce eh|vc eh|e voce|tu es|es tu|estou falando com|falo com|eu sou|sou"
        r"|isso e",
    ),
)

# Italian.
_IT_PEOPLE = (
    r"(?:umano|umani|essere umano|persona(?: reale| vera| fisica)?|persone|operatore"
    r"|operatrice|operatori|agente|agenti|consulente|consulenti|assistente(?: umano)?"
    r"|addett[oa]|responsabile|impiegat[oa]|dipendente|servizio clienti"
    r"|assistenza(?: clienti| umana)?|supporto(?: clienti| tecnico)?|supervisore|tecnico)"
)
_IT_DET = (
    r"(?:(?:un|una|uno|il|lo|la|l|i|gli|le|qualche|vostro|vostra|tuo|tua|suo|sua|al|allo|alla"
    r"|all|col|vero|vera) )*"
)
_IT_ANYONE = rf"{_IT_DET}(?:{_IT_PEOPLE}|qualcuno|qualcuna)"
_IT_DECISION = r"(?:decisione|decisioni|rifiuto|diniego|esito|rigetto|sospensione|blocco|sanzione)"

_IT = _Phrases(
    handoff=(
        rf"(?:parlare|chattare|conversare|comunicare|essere mess[oa] in contatto"
        rf"|mettermi in contatto|entrare in contatto|essere trasferit[oa]|essere passat[oa])"
        rf"(?: (?:con|a|al|alla|allo|coll|col))? {_IT_ANYONE}",
        rf"(?:voglio|vorrei|chiedo|esigo|preferisco|ho bisogno di|ho bisogno d|mi serve"
        rf"|mi servirebbe|passami|mi passi|mi passa|mi puoi passare|mi puo passare"
        rf"|mettetemi in contatto con|mettimi in contatto con|trasferiscimi a|collegami con"
        rf"|collegatemi con|contattare|chiamare) {_IT_DET}{_IT_PEOPLE}",
        r"persona reale|persona vera|persona in carne e ossa|essere umano"
        r"|(?:operatore|agente|assistente|consulente) umano|assistenza umana|operatrice umana",
    ),
    review=(
        r"(?:revisione|intervento|valutazione|decisione|verifica|supervisione|controllo"
        r"|riesame|esame|analisi) (?:umana|umano)",
        r"(?:rivist|riesaminat|rivalutat|valutat|esaminat|verificat|decis|pres|riconsiderat)"
        r"[oa] da (?:parte di )?(?:un |una |uno )?(?:umano|persona|essere umano|operatore"
        r"|operatrice|dipendente|consulente)",
        r"(?:umano|persona|operatore|operatrice|consulente) (?:che )?(?:riveda|riesamini"
        r"|rivaluti|esamini|controlli|verifichi|riconsideri)",
        rf"(?:contestare|contesto|impugnare|impugno|ricorrere contro|fare ricorso contro"
        rf"|appellarmi contro|appellarsi contro|oppormi a|mi oppongo a|rivedere|riesaminare"
        rf"|riconsiderare|annullare|revocare) (?:(?:la|questa|quella|vostra|sua|tua|mia|il"
        rf"|questo|quel|l|alla) )*{_IT_DECISION}",
        r"(?:fare|presentare|proporre|inoltrare) (?:un |il )?(?:ricorso|appello)",
        r"(?:voglio|vorrei|posso|come posso|devo) (?:ricorrere|fare ricorso|contestare"
        r"|appellarmi|impugnare)",
        r"diritto (?:di|al|a) (?:ricorso|ricorrere|contestare)",
        r"non essere sottopost[oa] a (?:una )?decisione (?:\w+ ){0,6}?automatizzata",
    ),
    bare=(rf"(?:(?:voglio|vorrei) )?{_IT_ANYONE}",),
    bare_review=(
        r"(?:(?:voglio|vorrei) )?(?:fare ricorso|ricorso|ricorrere|contestare|revisione umana)",
    ),
    fillers=(
        "per favore",
        "per piacere",
        "perfavore",
        "per cortesia",
        "grazie",
        "ciao",
        "salve",
        "buongiorno",
        "ora",
        "adesso",
        "subito",
        "si",
        "urgente",
        "solo",
        "gentilmente",
    ),
    negation=_negation(
        r"non|mai",
        r"voglio|vorrei|ho bisogno|serve|mi serve",
        r"di|d",
        r"sei|sei tu|tu sei|lei e|e lei|io sono|sono|sto parlando con|parlo con",
    ),
)

# Dutch.
_NL_PEOPLE = (
    r"(?:mens|mensen|persoon|personen|medewerker|medewerkers|medewerkster|agent|operator"
    r"|adviseur|klantenservice|klantendienst|klantenservicemedewerker|servicedesk|helpdesk"
    r"|vertegenwoordiger|leidinggevende|manager|supervisor|behandelaar"
    r"|echte? (?:mens|persoon|medewerker)|menselijke (?:medewerker|hulp|ondersteuning))"
)
_NL_DET = r"(?:(?:een|de|het|uw|jullie|je|echte|echt|menselijke|levende) )*"
_NL_ANYONE = rf"{_NL_DET}(?:{_NL_PEOPLE}|iemand)"
_NL_SPECIFIC = rf"{_NL_DET}{_NL_PEOPLE}"
_NL_DECISION = r"(?:besluit|beslissing|afwijzing|weigering|blokkade)"
_NL_HUMAN = r"(?:een |de )?(?:echte? )?(?:mens|persoon|medewerker)"

_NL = _Phrases(
    handoff=(
        rf"met {_NL_ANYONE} (?:spreken|praten|chatten|bellen|contact|communiceren"
        rf"|in contact komen)",
        rf"(?:spreken|praten|chatten|bellen|contact opnemen|in contact komen|doorverbinden"
        rf"|doorverbonden worden|doorgeschakeld worden|verbind me|verbind mij|verbindt u mij"
        rf"|verbind) met {_NL_ANYONE}",
        rf"(?:wil|wil graag|zou graag|graag|vraag om|vraag naar|eis|geef me|geef mij)"
        rf" {_NL_SPECIFIC}",
        rf"{_NL_ANYONE} spreken|{_NL_SPECIFIC} nodig",
        r"echte? (?:mens|persoon)|menselijke (?:medewerker|hulp|ondersteuning|contact)",
    ),
    review=(
        r"menselijke (?:beoordeling|toetsing|tussenkomst|controle|beslissing|review"
        r"|herbeoordeling|blik)",
        rf"(?:beoordeeld|herbeoordeeld|bekeken|getoetst|gecontroleerd|besloten|nagekeken"
        rf"|herzien) (?:worden |laten worden )?door {_NL_HUMAN}",
        rf"door {_NL_HUMAN} (?:laten |te |worden |wordt |werd )?(?:beoordelen|beoordeeld"
        rf"|bekijken|bekeken|toetsen|getoetst|herbeoordelen|herbeoordeeld|herzien|nakijken"
        rf"|nagekeken|controleren|gecontroleerd)",
        r"bezwaar (?:maken|indienen|aantekenen|tegen)|in (?:hoger )?beroep gaan"
        r"|beroep (?:aantekenen|instellen|tegen)",
        rf"{_NL_DECISION} (?:aanvechten|aan te vechten|betwisten|herzien|heroverwegen)",
        rf"(?:aanvechten|betwisten|herzien|heroverwegen) van (?:het |de |dit |deze )?"
        rf"{_NL_DECISION}",
        r"niet (?:onderworpen|onderwerpen) (?:worden )?aan (?:een )?(?:uitsluitend |volledig )?"
        r"geautomatiseerde",
    ),
    bare=(rf"(?:(?:ik wil|ik wil graag|graag) )?{_NL_ANYONE}",),
    bare_review=(r"(?:ik wil )?(?:bezwaar(?: maken)?|in beroep|beroep|menselijke beoordeling)",),
    fillers=(
        "alstublieft",
        "alsjeblieft",
        "aub",
        "a u b",
        "graag",
        "dank je",
        "dank u",
        "dankjewel",
        "bedankt",
        "hallo",
        "hoi",
        "nu",
        "ja",
        "snel",
        "dringend",
        "even",
    ),
    negation=_negation(
        r"niet|geen|nooit",
        r"wil|hoef",
        r"te",
        r"ben je|bent u|ben jij|is dit|is dat|praat ik met|spreek ik met|chat ik met|ik ben",
    ),
)

_LANGUAGES: dict[str, _Phrases] = {
    "en": _EN,
    "fr": _FR,
    "de": _DE,
    "es": _ES,
    "pt": _PT,
    "it": _IT,
    "nl": _NL,
}
HANDOFF_LANGUAGES: frozenset[str] = frozenset(_LANGUAGES)

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
    phrases = [_LANGUAGES[code] for code in codes]

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
    return tuple(code for code in _LANGUAGES if code in wanted)


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
