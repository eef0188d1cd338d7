"""Product questions in a conversation: what the catalogue says about a question (read
with the knowledge base's passages, in the reply's read step), the offline answer with
product cards, and the ``search_products`` tool a model calls.

The offline responder answers with products only when the question is about products
and the catalogue answers it better than the knowledge base:

- a question with a price, stock or one of the catalogue's option values ("under 100
  EUR", "in stock", "size 42") is a product question: its products, or, when none
  matches and no passage of the knowledge base answers, a sentence saying so;
- a question phrased as asking for products ("do you have", "je cherche") gets products
  when some match, unless a grounded passage is closer to it than the best product
  (a mixed organisation keeps its knowledge answers: "do you have a returns policy?");
- anything else is answered from the knowledge base exactly as without a catalogue.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from cybergine.analytics import embedding_usage
from cybergine.catalog.search import (
    MAX_RESULTS,
    OptionFilter,
    ProductFilters,
    ProductHit,
    cards_text,
    embed_query,
    has_products,
    known_option_values,
    option_key,
    product_card,
    search_products,
    tool_result,
)
from cybergine.conversations.intent_phrases.products import OPTION_NAMES, PHRASES
from cybergine.conversations.product_questions import ProductQuestion, candidate_values, parse
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.embeddings import EmbeddingProvider
from cybergine.knowledge.embeddings.base import metering
from cybergine.knowledge.search import Hit
from cybergine.llm import extractive
from cybergine.llm.redaction import Redactor

CARDS = 5
TOOL_DEFAULT_LIMIT = 5
MAX_TOOL_LIMIT = 10
MAX_TOOL_TEXT = 200
MAX_TOOL_OPTIONS = 3

# Runs a model's product search: (query, filters, limit) in, the products out.
SearchProducts = Callable[[str, ProductFilters, int], Awaitable[list[ProductHit]]]


@dataclass(frozen=True)
class Catalogue:
    """What the organisation's catalogue says about one question: ``question`` is None
    when it is not about products (then ``hits`` is empty)."""

    question: ProductQuestion | None
    hits: list[ProductHit]


@dataclass(frozen=True)
class ProductReply:
    text: str
    cards: list[dict[str, Any]]


async def look_up(
    scope: TenantScope,
    text: str,
    *,
    languages: Sequence[str],
    embeddings: EmbeddingProvider | None,
    redact: bool,
    assistant_id: uuid.UUID | None = None,
) -> Catalogue | None:
    """None when the organisation shows no product (the tool is not offered then)."""
    session, organisation_id = scope.session, scope.organisation_id
    if not await has_products(session, organisation_id):
        return None
    known = await known_option_values(session, organisation_id, candidate_values(text))
    question = parse(text, languages, known)
    if not question.about_products:
        return Catalogue(None, [])
    hits = await search_products_for(
        scope,
        question.words,
        question.filters(),
        CARDS,
        embeddings=embeddings,
        redact=redact,
        assistant_id=assistant_id,
    )
    return Catalogue(question, hits)


async def search_products_for(
    scope: TenantScope,
    query: str,
    filters: ProductFilters,
    limit: int,
    *,
    embeddings: EmbeddingProvider | None,
    redact: bool,
    assistant_id: uuid.UUID | None = None,
) -> list[ProductHit]:
    """A search of the organisation's products; the query's vector is made from the
    query redacted as a prompt is when it may leave for an external model (policy §7),
    and counted in the analytics' embedding usage under ``assistant_id``."""
    with metering() as usage:
        vector = await embed_query(embeddings, Redactor().redact(query) if redact else query)
    await embedding_usage.record(
        scope.session,
        scope.organisation_id,
        usage,
        purpose=embedding_usage.Purpose.PRODUCT_SEARCH,
        assistant_id=assistant_id,
    )
    return await search_products(
        scope.session,
        scope.organisation_id,
        query,
        filters,
        provider=embeddings if vector is not None else None,
        query_vector=vector,
        k=limit,
    )


def _closer_than_knowledge(product: ProductHit, passage: Hit) -> bool:
    if product.dense is None or passage.dense is None:
        return False  # nothing to compare: the knowledge answer stands, as before
    return product.dense >= passage.dense.score


def offline_reply(catalogue: Catalogue | None, knowledge: Sequence[Hit]) -> ProductReply | None:
    """The offline answer with products, or None to answer from the knowledge base."""
    if catalogue is None or catalogue.question is None:
        return None
    question = catalogue.question
    phrases = PHRASES[question.language]
    grounded = [hit for hit in knowledge if extractive.grounded(hit)]
    if catalogue.hits:
        if (
            not question.constrained
            and grounded
            and not _closer_than_knowledge(catalogue.hits[0], grounded[0])
        ):
            return None
        cards = [product_card(hit, show_variant=bool(question.options)) for hit in catalogue.hits]
        return ProductReply(
            text=cards_text(cards, intro=phrases.found, stock_words=phrases.stock_words),
            cards=cards,
        )
    if question.constrained and not grounded:
        what = question.filters().describe(phrases.describe_words)
        return ProductReply(text=phrases.found_none.format(what=what), cards=[])
    return None


# --- The search_products tool ----------------------------------------------------------


def _price(raw: Any, name: str) -> Decimal | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"{name} must be a number")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError(f"{name} must be a number") from None
    if not value.is_finite() or value < 0 or value > Decimal("999999999999.99"):
        raise ValueError(f"{name} must be a positive amount")
    return value


def _text(raw: Any, name: str) -> str | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str) or len(raw) > MAX_TOOL_TEXT:
        raise ValueError(f"{name} must be a short text")
    return raw.strip()


def _option_names(name: str) -> tuple[str, ...]:
    key = option_key(name.strip())
    for group in OPTION_NAMES.values():
        if key in group:
            return tuple(dict.fromkeys((key, *group)))
    return (key,)


def tool_arguments(arguments: dict[str, Any]) -> tuple[str, ProductFilters, int]:
    """A model's ``search_products`` arguments checked (``ValueError`` says what is
    wrong, for the model to correct)."""
    query = _text(arguments.get("query"), "query") or ""
    currency = _text(arguments.get("currency"), "currency")
    if currency is not None and not (len(currency) == 3 and currency.isalpha()):
        raise ValueError("currency must be an ISO 4217 code such as EUR")
    in_stock = arguments.get("in_stock", False)
    if not isinstance(in_stock, bool):
        raise ValueError("in_stock must be true or false")
    raw_options = arguments.get("options") or {}
    if not isinstance(raw_options, dict) or len(raw_options) > MAX_TOOL_OPTIONS:
        raise ValueError(f"options must be an object of at most {MAX_TOOL_OPTIONS} names")
    options = []
    for name, value in raw_options.items():
        checked = _text(value, f"options.{name}")
        if checked is None or not str(name).strip() or len(str(name)) > MAX_TOOL_TEXT:
            raise ValueError("each option needs a name and a value")
        options.append(OptionFilter(checked, _option_names(str(name))))
    limit = arguments.get("limit", TOOL_DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_TOOL_LIMIT:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_TOOL_LIMIT}")
    filters = ProductFilters(
        min_price=_price(arguments.get("min_price"), "min_price"),
        max_price=_price(arguments.get("max_price"), "max_price"),
        currency=currency.upper() if currency else None,
        in_stock=in_stock,
        options=tuple(options),
        collection=_text(arguments.get("collection"), "collection"),
    )
    return query, filters, min(limit, MAX_RESULTS)


async def run_tool(
    search: SearchProducts, arguments: dict[str, Any], shown: list[dict[str, Any]]
) -> str:
    """The tool's result for the model; the cards found are added to ``shown`` (once
    each), for the answer's payload."""
    try:
        query, filters, limit = tool_arguments(arguments)
    except ValueError as error:
        return f"Invalid arguments: {error}."
    hits = await search(query, filters, limit)
    known = {card["id"] for card in shown}
    for hit in hits:
        if str(hit.product_id) not in known:
            shown.append(product_card(hit, show_variant=bool(filters.options)))
    return tool_result(hits, filters)


def with_cards_text(text: str, cards: Sequence[dict[str, Any]]) -> str:
    """A model's answer with its products listed in plain text (``message.text`` reads
    whole without the cards)."""
    if not cards:
        return text
    return f"{text}\n\n{cards_text(cards)}"


__all__ = [
    "Catalogue",
    "ProductReply",
    "SearchProducts",
    "look_up",
    "offline_reply",
    "run_tool",
    "search_products_for",
    "tool_arguments",
    "with_cards_text",
]
