"""Spanish phrases of the intent detector: asking for a person or for a human review."""

from __future__ import annotations

from cybergine.conversations.intent_phrases.base import Phrases, negation

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

PHRASES = Phrases(
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
    negation=negation(
        r"no|nunca|jamas",
        r"quiero|necesito|deseo|quisiera|me hace falta|hace falta",
        r"de",
        r"eres|es usted|usted es|sois|estoy hablando con|hablo con|soy",
    ),
)
