"""Phrases by which a customer exercises a right over their data in the chat (policy §14):
per language, per right, patterns over normalised text (as in ``base``: lower case, no
accents, single spaces, English contractions expanded). Matched anywhere in a clause by
``intents.detect_data_request``; a negation right before a phrase cancels it ("I don't
want you to delete my data"). A request for a person to review an automated decision is
the handoff detector's (``review`` phrases), not repeated here.
"""

from __future__ import annotations

# Keys are ``privacy_requests.kind`` values; the first right that matches wins, in this
# order (erasure before access: "delete everything you know about me").
KINDS: tuple[str, ...] = (
    "erasure",
    "rectification",
    "restriction",
    "objection",
    "portability",
    "access",
)

_EN_MY_DATA = (
    r"(?:my|all my|all of my) (?:personal )?(?:data|information|info|details|records"
    r"|personal information|account|conversations|messages|history|chat history)"
)
_EN_ME = r"(?:me|about me|on me|of me)"

EN: dict[str, tuple[str, ...]] = {
    "erasure": (
        rf"(?:delete|erase|remove|wipe|destroy|get rid of|clear) {_EN_MY_DATA}",
        rf"(?:delete|erase|remove|wipe) (?:everything|all|anything) (?:you (?:have|hold|know)"
        rf" )?{_EN_ME}",
        r"forget (?:me|about me|my (?:data|details|number))",
        r"right to (?:be forgotten|erasure|deletion)",
        r"(?:erasure|deletion) request",
    ),
    "rectification": (
        r"(?:correct|fix|change|update|rectify|amend) my (?:name|phone number|number|phone"
        r"|details|data|information|personal (?:data|details|information))",
        r"my (?:name|phone number|number) is (?:wrong|incorrect|misspelled|not right)",
        r"you (?:have|got|spelled|spelt) my (?:name|number|phone number) wrong",
        r"right to rectification",
    ),
    "restriction": (
        r"(?:restrict|limit|freeze|pause|suspend) (?:the )?(?:processing|use) of my"
        r" (?:personal )?(?:data|information)",
        r"(?:stop|cease) processing my (?:personal )?(?:data|information)",
        r"right to restrict(?:ion)?(?: of processing)?",
    ),
    "objection": (
        r"(?:i )?object to (?:the )?(?:processing|use) of my (?:personal )?(?:data|information)",
        r"(?:i )?object to (?:you )?(?:processing|using) my (?:personal )?(?:data|information)",
        r"(?:stop|cease) using my (?:personal )?(?:data|information)",
        r"(?:i )?object to (?:talking|speaking|chatting) (?:to|with) (?:a |an |the )?"
        r"(?:bot|ai|assistant|machine|robot)",
        r"right to object",
    ),
    "portability": (
        rf"(?:export|download|transfer) {_EN_MY_DATA}",
        rf"(?:a )?(?:copy|export) of {_EN_MY_DATA}",
        r"(?:data )?portability",
    ),
    "access": (
        r"what (?:personal )?(?:data|information|info|details) (?:do )?(?:you )?"
        r"(?:have|hold|keep|store|collect|know)",
        r"what do you (?:know|have|hold|store|keep) (?:about|on) me",
        rf"(?:see|access|view|get|send me|show me|give me) {_EN_MY_DATA}",
        r"(?:subject )?access request|right (?:of|to) access|right to know",
        r"\bdsar\b",
    ),
}

FR: dict[str, tuple[str, ...]] = {
    "erasure": (
        r"(?:supprimer|supprimez|supprime|effacer|effacez|efface|retirer) (?:toutes )?"
        r"(?:mes|mon|ma) (?:donnees|informations|infos|compte|historique|messages)",
        r"(?:oubliez|oublie|oublier) moi|droit a l oubli|droit a l effacement",
    ),
    "rectification": (
        r"(?:corriger|corrigez|corrige|modifier|modifiez|changer|changez|rectifier|rectifiez)"
        r" (?:mon nom|mon numero|mon telephone|mes (?:coordonnees|donnees|informations))",
        r"mon (?:nom|numero) est (?:faux|incorrect|mal ecrit)",
        r"droit de rectification",
    ),
    "restriction": (
        r"(?:limiter|limitez|restreindre|restreignez|suspendre|geler) (?:le )?traitement de"
        r" mes donnees",
        r"droit a la limitation",
    ),
    "objection": (
        r"(?:je m )?oppose au traitement de mes donnees|droit d opposition",
        r"(?:arretez|arreter|cessez) d utiliser mes donnees",
    ),
    "portability": (
        r"(?:exporter|telecharger|transferer) (?:mes|toutes mes) donnees",
        r"copie de (?:mes|toutes mes) donnees|portabilite",
    ),
    "access": (
        r"(?:quelles|que) (?:donnees|informations) (?:avez vous|as tu|detenez vous|gardez vous)",
        r"que savez vous (?:sur|de) moi",
        r"(?:acceder|acces) a mes donnees|droit d acces",
    ),
}

DE: dict[str, tuple[str, ...]] = {
    "erasure": (
        r"(?:losch|losche|loschen|loschen sie|entfernen sie|entfernen) (?:bitte )?(?:alle )?"
        r"(?:meine|mein) (?:daten|informationen|konto|nachrichten|verlauf)",
        r"meine (?:daten|informationen) (?:loschen|entfernen)",
        r"recht auf (?:loschung|vergessenwerden|vergessen werden)",
        r"vergessen sie mich",
    ),
    "rectification": (
        r"(?:meinen namen|meine (?:telefonnummer|nummer|daten)) (?:korrigieren|andern"
        r"|berichtigen|aktualisieren)",
        r"(?:korrigieren|andern|berichtigen) sie (?:bitte )?(?:meinen namen|meine"
        r" (?:telefonnummer|nummer|daten))",
        r"mein name ist falsch|recht auf berichtigung",
    ),
    "restriction": (
        r"verarbeitung meiner daten (?:einschranken|beschranken|aussetzen|stoppen)",
        r"recht auf einschrankung",
    ),
    "objection": (
        r"(?:widerspreche|widerspruch gegen) (?:der )?verarbeitung meiner daten",
        r"widerspruchsrecht",
    ),
    "portability": (
        r"meine daten (?:exportieren|herunterladen|ubertragen)|kopie meiner daten",
        r"datenubertragbarkeit",
    ),
    "access": (
        r"welche daten (?:haben|speichern|kennen) sie (?:uber|von) mir",
        r"was wissen sie uber mich",
        r"auskunft uber meine daten|recht auf auskunft|datenauskunft",
    ),
}

ES: dict[str, tuple[str, ...]] = {
    "erasure": (
        r"(?:borrar|borra|borren|borrad|eliminar|elimina|eliminen|suprimir|suprime) (?:todos )?"
        r"(?:mis|mi) (?:datos|informacion|cuenta|mensajes|historial)",
        r"olvidenme|olvidame|derecho al olvido|derecho de supresion",
    ),
    "rectification": (
        r"(?:corregir|corrige|corrijan|cambiar|cambia|cambien|rectificar|actualizar)"
        r" (?:mi nombre|mi numero|mi telefono|mis datos)",
        r"mi (?:nombre|numero) (?:esta|es) (?:mal|incorrecto)|derecho de rectificacion",
    ),
    "restriction": (
        r"(?:limitar|limiten|restringir|restrinjan|suspender) el tratamiento de mis datos",
        r"derecho a la limitacion",
    ),
    "objection": (
        r"me opongo al tratamiento de mis datos|derecho de oposicion",
        r"(?:dejen|deja) de usar mis datos",
    ),
    "portability": (
        r"(?:exportar|descargar|transferir) mis datos|copia de mis datos|portabilidad",
    ),
    "access": (
        r"que (?:datos|informacion) (?:tienen|tienes|guardan|guardas) (?:de|sobre) mi",
        r"que saben (?:de|sobre) mi",
        r"acceso a mis datos|derecho de acceso",
    ),
}

PT: dict[str, tuple[str, ...]] = {
    "erasure": (
        r"(?:apagar|apague|apaguem|excluir|exclua|excluam|eliminar|elimine|deletar|delete)"
        r" (?:todos )?(?:os )?(?:meus|minha|minhas) (?:dados|informacoes|conta|mensagens)",
        r"(?:esquecam|esqueca) me|direito ao esquecimento|direito de eliminacao",
    ),
    "rectification": (
        r"(?:corrigir|corrija|corrijam|alterar|altere|alterem|mudar|mude|mudem|atualizar"
        r"|atualize|atualizem|retificar|retifiquem)"
        r" (?:o )?(?:meu nome|meu numero|meu telefone|meus dados)",
        r"meu (?:nome|numero) esta (?:errado|incorreto)|direito de retificacao",
    ),
    "restriction": (
        r"(?:limitar|limitem|restringir|restrinjam|suspender) o tratamento dos meus dados",
        r"direito a limitacao",
    ),
    "objection": (
        r"(?:me oponho|oponho me) ao tratamento dos meus dados|direito de oposicao",
        r"(?:parem|pare) de usar (?:os )?meus dados",
    ),
    "portability": (
        r"(?:exportar|baixar|transferir) (?:os )?meus dados|copia dos meus dados|portabilidade",
    ),
    "access": (
        r"que (?:dados|informacoes) (?:voces )?(?:tem|guardam|possuem) (?:de|sobre) mim",
        r"o que (?:voces )?sabem sobre mim",
        r"acesso aos meus dados|direito de acesso",
    ),
}

IT: dict[str, tuple[str, ...]] = {
    "erasure": (
        r"(?:cancellare|cancellate|cancella|eliminare|eliminate|elimina|rimuovere|rimuovete)"
        r" (?:tutti )?(?:i )?(?:miei|mio|mia) (?:dati|informazioni|account|messaggi)",
        r"dimenticatemi|diritto all oblio|diritto alla cancellazione",
    ),
    "rectification": (
        r"(?:correggere|correggete|correggi|modificare|modificate|cambiare|cambiate|rettificare"
        r"|aggiornare) (?:il )?(?:mio nome|mio numero|mio telefono|miei dati)",
        r"il mio (?:nome|numero) e sbagliato|diritto di rettifica",
    ),
    "restriction": (
        r"(?:limitare|limitate|sospendere|sospendete) il trattamento dei miei dati",
        r"diritto di limitazione",
    ),
    "objection": (
        r"mi oppongo al trattamento dei miei dati|diritto di opposizione",
        r"(?:smettete|smetti) di usare i miei dati",
    ),
    "portability": (
        r"(?:esportare|scaricare|trasferire) i miei dati|copia dei miei dati|portabilita",
    ),
    "access": (
        r"quali (?:dati|informazioni) (?:avete|conservate|tenete) su di me",
        r"cosa sapete (?:di|su di) me",
        r"accesso ai miei dati|diritto di accesso",
    ),
}

NL: dict[str, tuple[str, ...]] = {
    "erasure": (
        r"(?:verwijder|verwijderen|wis|wissen) (?:al )?(?:mijn) (?:gegevens|data|account"
        r"|berichten|informatie)",
        r"mijn (?:gegevens|data) (?:verwijderen|wissen)",
        r"vergeet mij|recht op (?:vergetelheid|verwijdering|gegevenswissing)",
    ),
    "rectification": (
        r"(?:corrigeer|verbeter|wijzig|verander|pas) (?:mijn naam|mijn nummer|mijn"
        r" telefoonnummer|mijn gegevens)",
        r"mijn naam is (?:fout|verkeerd|onjuist)|recht op rectificatie",
    ),
    "restriction": (
        r"(?:beperk|beperken|stop|pauzeer) (?:de )?verwerking van mijn gegevens",
        r"recht op beperking",
    ),
    "objection": (
        r"(?:ik )?maak bezwaar tegen (?:de )?verwerking van mijn gegevens",
        r"recht (?:van|op) bezwaar",
    ),
    "portability": (
        r"(?:exporteer|download|exporteren|downloaden) (?:al )?mijn gegevens",
        r"kopie van mijn gegevens|overdraagbaarheid",
    ),
    "access": (
        r"welke gegevens (?:hebben jullie|heeft u|bewaren jullie) (?:van|over) mij",
        r"wat weten jullie over mij",
        r"inzage in mijn gegevens|recht op inzage",
    ),
}

# By base language, as the handoff phrases (``intent_phrases.LANGUAGES``).
RIGHTS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": EN,
    "fr": FR,
    "de": DE,
    "es": ES,
    "pt": PT,
    "it": IT,
    "nl": NL,
}
