"""German phrases of the intent detector: asking for a person or for a human review.

German (umlauts are folded: "Prüfung" is "prufung", "möchte" is "mochte").
"""

from __future__ import annotations

from cybergine.conversations.intent_phrases.base import Phrases, negation

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

PHRASES = Phrases(
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
    negation=negation(
        r"nicht|kein|keine|keinen|keinem|keiner|nie|niemals",
        r"will|mochte|brauche|muss",
        r"zu",
        r"bist du|sind sie|ist das|du bist|sie sind|bin ich|ich bin|spreche ich|rede ich"
        r"|chatte ich",
    ),
)
