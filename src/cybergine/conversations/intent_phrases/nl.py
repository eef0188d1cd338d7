"""Dutch phrases of the intent detector: asking for a person or for a human review."""

from __future__ import annotations

from cybergine.conversations.intent_phrases.base import Phrases, negation

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

PHRASES = Phrases(
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
    negation=negation(
        r"niet|geen|nooit",
        r"wil|hoef",
        r"te",
        r"ben je|bent u|ben jij|is dit|is dat|praat ik met|spreek ik met|chat ik met|ik ben",
    ),
)
