"""Phrases of product questions, per language: asking for products, price bounds,
currencies, stock, option names, the words that carry no product meaning, and what the
offline answer says. Data only: ``conversations.product_questions`` reads it.

Patterns are regular expressions matched on the folded question (case-folded, accents
stripped: "Größe" is "grosse", "à partir de" is "a partir de"), on word boundaries.
English always applies; another language when it is one of the assistant's.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProductPhrases:
    # Asking whether the shop has something: the customer wants what can be ordered.
    have: tuple[str, ...]
    # Asking to see or find products, stock or not.
    looking: tuple[str, ...]
    at_most: tuple[str, ...]  # followed by an amount: "under 100"
    at_least: tuple[str, ...]  # followed by an amount: "over 50"
    between: tuple[str, str]  # "between" AMOUNT "and" AMOUNT
    in_stock: tuple[str, ...]
    stop_words: frozenset[str]
    found: str  # the offline answer's first line
    found_none: str  # no product matches; {what}: the constraints in words
    stock_words: tuple[str, str]  # a card's line: available, unavailable
    # How the constraints are said in found_none (``catalog.search.DESCRIBE_WORDS``'s keys).
    describe_words: dict[str, str] = field(default_factory=dict)


# Currencies by the words and signs customers write (folded).
CURRENCIES: dict[str, str] = {
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "$": "USD",
    "us$": "USD",
    "usd": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "£": "GBP",
    "gbp": "GBP",
    "pound": "GBP",
    "pounds": "GBP",
    "chf": "CHF",
    "franken": "CHF",
    "cad": "CAD",
    "aud": "AUD",
}

# Option names customers use, grouped by what they mean, folded. A value said after one
# of them ("size 42", "taille 42") is looked for under an option of any name of its group
# (a shop's option is "Size", "Taille", "Größe" or "Shoe size"), compared lower-cased.
OPTION_NAMES: dict[str, tuple[str, ...]] = {
    "size": (
        "size",
        "shoe size",
        "taille",
        "pointure",
        "grosse",
        "größe",
        "grösse",
        "schuhgrosse",
        "schuhgröße",
        "talla",
        "taglia",
        "maat",
        "tamanho",
    ),
    "colour": (
        "color",
        "colour",
        "couleur",
        "farbe",
        "colore",
        "kleur",
        "cor",
    ),
    "material": ("material", "matiere", "matière", "materiau", "stoff"),
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_EN_STOP = _words(
    """a an and any are at be but by can could do does for from have has i if in is it
    me my of on or our please some something that the there this to want we what which
    with would you your got any anything show find looking look need get buy sell selling
    sells available stock cost costs price priced cheap size colour color hi hello thanks
    thank also like one ones pair pairs"""
)
_DE_STOP = _words(
    """ein eine einen einem einer der die das den dem des und oder ich mir mich wir ihr sie
    haben habt hast hat gibt es in im mit fur von zu bitte suche suchen brauche mochte
    etwas welche welcher welches auch noch was wie grosse farbe lager lieferbar verfugbar
    kosten kostet euro unter bis"""
)
_FR_STOP = _words(
    """un une des le la les de du et ou je j me moi nous vous tu il y a avez avez-vous
    est-ce que qu en dans avec pour par sur cherche voudrais veux besoin quelque chose
    taille couleur stock disponible prix moins plus bonjour merci svp"""
)

PHRASES: dict[str, ProductPhrases] = {
    "en": ProductPhrases(
        have=(
            r"do you (?:have|sell|carry|stock|got)",
            r"have you got",
            r"(?:is|are) there any",
            r"any chance you have",
            r"do you guys have",
        ),
        looking=(
            r"(?:i ?am|i'm|im) looking for",
            r"looking for",
            r"show me",
            r"i (?:need|want|would like)",
            r"can i (?:get|buy)",
            r"recommend",
            r"search for",
            r"find me",
        ),
        at_most=(
            r"under",
            r"below",
            r"less than",
            r"cheaper than",
            r"up to",
            r"at most",
            r"no more than",
            r"max(?:imum)?",
            r"within",
        ),
        at_least=(r"over", r"above", r"more than", r"at least", r"from", r"min(?:imum)?"),
        between=(r"between", r"and"),
        in_stock=(
            r"in stock",
            r"available",
            r"availability",
            r"ready to ship",
            r"ships? (?:now|today)",
        ),
        stop_words=_EN_STOP,
        found="Here is what I found:",
        found_none="I couldn't find a product matching that ({what}).",
        stock_words=("in stock", "out of stock"),
    ),
    "de": ProductPhrases(
        have=(
            r"(?:haben|habt|hast) (?:sie|ihr|du)",
            r"gibt es",
            r"fuhren sie",
            r"verkaufen sie",
        ),
        looking=(r"ich suche", r"suche", r"zeig(?:en sie)? mir", r"ich (?:brauche|mochte)"),
        at_most=(
            r"unter",
            r"bis",
            r"weniger als",
            r"hochstens",
            r"maximal",
            r"billiger als",
            r"gunstiger als",
        ),
        at_least=(r"uber", r"mehr als", r"mindestens", r"ab"),
        between=(r"zwischen", r"und"),
        in_stock=(r"auf lager", r"lieferbar", r"verfugbar", r"vorratig", r"vorhanden"),
        stop_words=_DE_STOP,
        found="Das habe ich gefunden:",
        found_none="Dazu habe ich leider kein passendes Produkt gefunden ({what}).",
        stock_words=("auf Lager", "nicht auf Lager"),
        describe_words={
            "between": "zwischen {low} und {high}",
            "at_most": "höchstens {amount}",
            "at_least": "ab {amount}",
            "option": "Option",
            "in_stock": "auf Lager",
            "collection": "Kollektion",
            "type": "Art",
            "vendor": "Marke",
        },
    ),
    "fr": ProductPhrases(
        have=(
            r"(?:avez|auriez)[ -]vous",
            r"vous avez",
            r"est-ce que vous avez",
            r"y a-t-il",
            r"il y a",
            r"vendez[ -]vous",
        ),
        looking=(r"je cherche", r"je recherche", r"montrez[ -]moi", r"je (?:voudrais|veux)"),
        at_most=(
            r"moins de",
            r"moins cher que",
            r"sous",
            r"jusqu'a",
            r"au plus",
            r"maximum",
            r"pas plus de",
            r"inferieur a",
        ),
        at_least=(r"plus de", r"au moins", r"a partir de", r"des", r"superieur a"),
        between=(r"entre", r"et"),
        in_stock=(r"en stock", r"disponibles?", r"dispo"),
        stop_words=_FR_STOP,
        found="Voici ce que j'ai trouvé :",
        found_none="Je n'ai trouvé aucun produit correspondant ({what}).",
        stock_words=("en stock", "en rupture de stock"),
        describe_words={
            "between": "entre {low} et {high}",
            "at_most": "{amount} au plus",
            "at_least": "à partir de {amount}",
            "option": "option",
            "in_stock": "en stock",
            "collection": "collection",
            "type": "type",
            "vendor": "marque",
        },
    ),
}
