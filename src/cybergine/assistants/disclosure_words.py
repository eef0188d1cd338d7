"""What an AI disclosure says in each language the assistants speak: the default
wording, the words that say the assistant is automated, and the words that deny what
follows. Data only; ``assistants/disclosure.py`` reads it.

Words are normalised as the check normalises text: lower case, accents folded ("künstliche"
is "kunstliche"), anything but letters and digits a space. Acronyms ("AI", "KI", "IA")
are matched as written, in capitals: in Italian, "ai" is "to the".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DisclosureWords:
    default: str  # what a new assistant speaking this language discloses
    automated: tuple[str, ...]  # words or phrases saying it is automated
    negators: tuple[str, ...]  # words denying what follows ("not a bot")


ACRONYMS = ("AI", "A I", "KI", "K I", "IA", "I A")

# English first: it is the default language, and the first one named in messages.
LANGUAGES: dict[str, DisclosureWords] = {
    "en": DisclosureWords(
        default="You're chatting with an AI assistant. You can ask for a person at any time.",
        automated=(
            "artificial intelligence",
            "automated",
            "automatic",
            "bot",
            "chatbot",
            "robot",
            "virtual assistant",
            "virtual agent",
            "digital assistant",
            "computer program",
            "language model",
        ),
        negators=("not", "no", "never", "isn", "aren", "wasn", "weren", "don", "doesn", "nor"),
    ),
    "fr": DisclosureWords(
        default=(
            "Vous discutez avec un assistant IA. Vous pouvez demander à parler à une "
            "personne à tout moment."
        ),
        automated=(
            "intelligence artificielle",
            "automatise",
            "automatisee",
            "automatique",
            "bot",
            "chatbot",
            "robot",
            "assistant virtuel",
            "assistante virtuelle",
            "agent virtuel",
            "agent conversationnel",
        ),
        negators=("pas", "ne", "n", "jamais", "non", "aucun", "aucune", "ni"),
    ),
    "de": DisclosureWords(
        default=(
            "Sie chatten mit einem KI-Assistenten. Sie können jederzeit nach einer Person fragen."
        ),
        automated=(
            "kunstliche intelligenz",
            "kunstlichen intelligenz",
            "automatisiert",
            "automatisierte",
            "automatisierten",
            "automatisch",
            "bot",
            "chatbot",
            "roboter",
            "virtueller assistent",
            "virtuellen assistenten",
            "virtuelle assistentin",
            "digitaler assistent",
            "digitalen assistenten",
        ),
        negators=("kein", "keine", "keinem", "keinen", "keiner", "nicht", "nie", "niemals"),
    ),
    "es": DisclosureWords(
        default=(
            "Estás hablando con un asistente de IA. Puedes pedir hablar con una persona en "
            "cualquier momento."
        ),
        automated=(
            "inteligencia artificial",
            "automatizado",
            "automatizada",
            "automatico",
            "automatica",
            "bot",
            "chatbot",
            "robot",
            "asistente virtual",
            "agente virtual",
        ),
        negators=("no", "nunca", "jamas", "ningun", "ninguna", "ni"),
    ),
    "pt": DisclosureWords(
        default=(
            "Você está conversando com um assistente de IA. Pode pedir para falar com uma "
            "pessoa a qualquer momento."
        ),
        automated=(
            "inteligencia artificial",
            "automatizado",
            "automatizada",
            "automatico",
            "automatica",
            "bot",
            "chatbot",
            "robo",
            "robot",
            "assistente virtual",
            "agente virtual",
        ),
        negators=("nao", "nunca", "jamais", "nenhum", "nenhuma", "nem"),
    ),
    "it": DisclosureWords(
        default=(
            "Stai chattando con un assistente IA. Puoi chiedere di parlare con una persona "
            "in qualsiasi momento."
        ),
        automated=(
            "intelligenza artificiale",
            "automatizzato",
            "automatizzata",
            "automatico",
            "automatica",
            "bot",
            "chatbot",
            "robot",
            "assistente virtuale",
            "agente virtuale",
        ),
        negators=("non", "mai", "nessun", "nessuno", "nessuna"),
    ),
    "nl": DisclosureWords(
        default=("Je chat met een AI-assistent. Je kunt op elk moment om een medewerker vragen."),
        automated=(
            "kunstmatige intelligentie",
            "geautomatiseerd",
            "geautomatiseerde",
            "automatisch",
            "automatische",
            "bot",
            "chatbot",
            "robot",
            "virtuele assistent",
            "digitale assistent",
        ),
        negators=("geen", "niet", "nooit"),
    ),
}
