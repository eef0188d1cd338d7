"""Italian phrases of the intent detector: asking for a person or for a human review."""

from __future__ import annotations

from cybergine.conversations.intent_phrases.base import Phrases, negation

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

PHRASES = Phrases(
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
    negation=negation(
        r"non|mai",
        r"voglio|vorrei|ho bisogno|serve|mi serve",
        r"di|d",
        r"sei|sei tu|tu sei|lei e|e lei|io sono|sono|sto parlando con|parlo con",
    ),
)
