"""What the assistant answers a customer who exercises a right over their data in the
chat (policy §14), in the language they asked in: data for ``conversations.answering``,
which decides the answer. ``{what}`` is the right, ``{days}`` the days the policy promises
an answer within."""

from __future__ import annotations

# By base language, as ``intent_phrases.rights.RIGHTS``; kinds as ``privacy_requests.kind``.
CONFIRMATIONS: dict[str, str] = {
    "en": (
        "Thank you: I have passed your request {what} to our team. They will check that "
        "it is really you and respond within {days} days."
    ),
    "fr": (
        "Merci : j'ai transmis votre demande {what} à notre équipe. Elle vérifiera qu'il "
        "s'agit bien de vous et vous répondra sous {days} jours."
    ),
    "de": (
        "Danke: Ich habe Ihre Anfrage {what} an unser Team weitergegeben. Es prüft, ob Sie "
        "es wirklich sind, und antwortet innerhalb von {days} Tagen."
    ),
    "es": (
        "Gracias: he pasado su solicitud {what} a nuestro equipo. Comprobarán que es usted "
        "y le responderán en un plazo de {days} días."
    ),
    "pt": (
        "Obrigado: encaminhei o seu pedido {what} à nossa equipa. Vão confirmar que é você "
        "e responder no prazo de {days} dias."
    ),
    "it": (
        "Grazie: ho inoltrato la sua richiesta {what} al nostro team. Verificheranno che "
        "sia davvero lei e risponderanno entro {days} giorni."
    ),
    "nl": (
        "Dank u: ik heb uw verzoek {what} aan ons team doorgegeven. Zij controleren of u "
        "het echt bent en antwoorden binnen {days} dagen."
    ),
}

WHAT: dict[str, dict[str, str]] = {
    "en": {
        "access": "for a copy of the data we hold about you",
        "portability": "for your data in a portable format",
        "rectification": "to correct your details",
        "erasure": "to delete your data",
        "restriction": "to restrict how we use your data",
        "objection": "objecting to how we use your data",
    },
    "fr": {
        "access": "d'accès à vos données",
        "portability": "de copie portable de vos données",
        "rectification": "de rectification de vos données",
        "erasure": "d'effacement de vos données",
        "restriction": "de limitation du traitement de vos données",
        "objection": "d'opposition au traitement de vos données",
    },
    "de": {
        "access": "auf Auskunft über Ihre Daten",
        "portability": "auf eine Kopie Ihrer Daten",
        "rectification": "auf Berichtigung Ihrer Daten",
        "erasure": "auf Löschung Ihrer Daten",
        "restriction": "auf Einschränkung der Verarbeitung Ihrer Daten",
        "objection": "mit Ihrem Widerspruch gegen die Verarbeitung Ihrer Daten",
    },
    "es": {
        "access": "de acceso a sus datos",
        "portability": "de una copia portable de sus datos",
        "rectification": "de rectificación de sus datos",
        "erasure": "de supresión de sus datos",
        "restriction": "de limitación del tratamiento de sus datos",
        "objection": "de oposición al tratamiento de sus datos",
    },
    "pt": {
        "access": "de acesso aos seus dados",
        "portability": "de uma cópia portável dos seus dados",
        "rectification": "de retificação dos seus dados",
        "erasure": "de apagamento dos seus dados",
        "restriction": "de limitação do tratamento dos seus dados",
        "objection": "de oposição ao tratamento dos seus dados",
    },
    "it": {
        "access": "di accesso ai suoi dati",
        "portability": "di una copia portabile dei suoi dati",
        "rectification": "di rettifica dei suoi dati",
        "erasure": "di cancellazione dei suoi dati",
        "restriction": "di limitazione del trattamento dei suoi dati",
        "objection": "di opposizione al trattamento dei suoi dati",
    },
    "nl": {
        "access": "om inzage in uw gegevens",
        "portability": "om een overdraagbare kopie van uw gegevens",
        "rectification": "om uw gegevens te corrigeren",
        "erasure": "om uw gegevens te wissen",
        "restriction": "om de verwerking van uw gegevens te beperken",
        "objection": "met uw bezwaar tegen de verwerking van uw gegevens",
    },
}
