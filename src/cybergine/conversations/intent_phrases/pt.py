"""Portuguese phrases of the intent detector: asking for a person or for a human review."""

from __future__ import annotations

from cybergine.conversations.intent_phrases.base import Phrases, negation

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

PHRASES = Phrases(
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
    negation=negation(
        r"nao|nunca|jamais",
        r"quero|preciso|desejo|queria|gostaria",
        r"de",
        r"voce e|vc e|voce eh|vc eh|e voce|tu es|es tu|estou falando com|falo com|eu sou|sou"
        r"|isso e",
    ),
)
