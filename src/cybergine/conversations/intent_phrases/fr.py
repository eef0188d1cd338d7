"""French phrases of the intent detector: asking for a person or for a human review."""

from __future__ import annotations

from cybergine.conversations.intent_phrases.base import Phrases, negation

_FR_PEOPLE = (
    r"(?:humain|etre humain|personne(?: reelle| physique)?|vraie personne|conseiller|conseillere"
    r"|agent|operateur|operatrice|interlocuteur|interlocutrice|responsable|manager|superviseur"
    r"|employe|employee|technicien|technicienne|service (?:client|clientele|apres vente)"
    r"|membre de (?:l )?equipe|(?:vrai|vraie) (?:humain|personne|conseiller|conseillere))s?"
)
_FR_DET = r"(?:(?:un|une|le|la|l|les|des|du|au|aux|votre|vos|ton|ta|vrai|vraie|veritable) )*"
_FR_ANYONE = rf"{_FR_DET}(?:{_FR_PEOPLE}|quelqu un|quelqu une|qqn)"
_FR_DECISION_DET = r"(?:(?:la|cette|votre|ma|une|le|ce|l|de|du|d) )*"

PHRASES = Phrases(
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
    negation=negation(
        r"pas|jamais|plus|ne|n",
        r"besoin|envie",
        r"de|d",
        r"es tu|etes vous|tu es|vous etes|t es|c est|est ce|je parle (?:a|avec)|je suis",
    ),
)
