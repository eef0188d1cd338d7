"""The assistant's test chat: a question answered as a customer's would be, and why.

The dashboard's "Try it" panel and ``POST /api/v1/assistants/{id}/preview`` ask the
assistant a question with the turns of the test chat before it (kept by the browser and
sent with each question, never stored). The answer is decided by the reply pipeline's own
implementation (``conversations.answering``): the same retrieval, responder (the offline
extractive one or the assistant's model), handoff detection, business hours and redaction.

A test chat is kept apart from customers' conversations: it writes no customer,
conversation, message, job or event, so inboxes, analytics and webhooks never see it.
The knowledge search runs in a short read-only transaction; a language model is asked
with no connection held, as in the pipeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cybergine.assistants.models import Assistant, LlmProvider
from cybergine.catalog.search import ProductFilters, ProductHit
from cybergine.conversations import intents, product_answers
from cybergine.conversations.answering import (
    HISTORY_TURNS,
    Answer,
    AssistantView,
    Question,
    Reason,
    Responder,
    Turn,
    needs_search,
    retrieve,
)
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.errors import InvalidInput
from cybergine.knowledge.embeddings import EmbeddingProvider
from cybergine.knowledge.search import Hit
from cybergine.llm import extractive
from cybergine.llm.providers import LLMProvider
from cybergine.settings import Settings

# As long as the longest message a customer can send (WhatsApp's 4,096 characters).
MAX_QUESTION_CHARS = 4096
# Earlier turns the browser may send; only the last HISTORY_TURNS reach the answer, as in
# a real conversation. An earlier answer may be long (a model's, up to its max tokens).
MAX_PREVIEW_TURNS = 40
MAX_TURN_CHARS = 20_000

Outcome = Literal["answered", "fallback", "greeted", "handed_off"]


@dataclass(frozen=True)
class PreviewSource:
    """A passage the answer was decided on: retrieval's, or one the model searched for."""

    item_id: uuid.UUID
    title: str
    kind: Literal["document", "qa"] | None  # None: found by the model's own search
    score: float  # fused, as ranked
    lexical: float | None  # BM25
    dense: float | None  # cosine similarity; None for lexical-only search
    above_threshold: bool  # close enough to answer from
    cited: bool  # the answer quotes or cites it
    number: int | None  # as cited: [1]


@dataclass(frozen=True)
class Preview:
    text: str
    # Shown before the text: the assistant's AI disclosure on a conversation's first reply.
    disclosure: str | None
    outcome: Outcome
    reason: str  # in plain words, for the person trying the assistant
    reason_code: Reason
    handed_off_by: str | None  # what asked for a person: a phrase, a keyword, the model
    within_business_hours: bool
    offers_person: bool  # a "Talk to a person" button goes with the answer
    system: bool  # a notice from the platform (a handoff), not the assistant's words
    threshold: str  # the grounding threshold, in words
    sources: list[PreviewSource]
    responder: Literal["extractive", "model"]
    provider: str | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    model_error: str | None
    redacted: bool
    assistant_active: bool


async def preview_reply(
    database: Database,
    organisation_id: uuid.UUID,
    assistant_id: uuid.UUID,
    *,
    text: str,
    history: Sequence[Turn],
    settings: Settings,
    embeddings: EmbeddingProvider | None,
    chat_provider: LLMProvider | None = None,
) -> Preview:
    """The answer the assistant would give to ``text`` after ``history`` (oldest first),
    with the reasons; another organisation's assistant is ``NotFound``."""
    question_text = text.strip()
    if not question_text:
        raise InvalidInput("Write a question first: the message is empty.", field="text")
    if len(question_text) > MAX_QUESTION_CHARS:
        raise InvalidInput(
            f"Keep the question under {MAX_QUESTION_CHARS:,} characters.", field="text"
        )
    turns = [(speaker, said[:MAX_TURN_CHARS]) for speaker, said in history if said.strip()]
    question = Question(text=question_text, history=turns[-HISTORY_TURNS:])

    async with database.transaction() as session:
        scope = TenantScope(session, organisation_id)
        assistant_row = await scope.get(Assistant, assistant_id, what="assistant")
        assistant = AssistantView.of(assistant_row)
        active = assistant_row.active
        hits: list[Hit] = []
        catalogue: product_answers.Catalogue | None = None
        if needs_search(assistant, question):
            hits = await retrieve(scope, assistant, question_text, embeddings)
            catalogue = await product_answers.look_up(
                scope,
                question_text,
                languages=assistant.languages,
                embeddings=embeddings,
                redact=assistant.redact_personal_data,
                assistant_id=assistant.id,
            )

    async def search_again(query: str) -> list[Hit]:
        async with database.transaction() as session:
            return await retrieve(
                TenantScope(session, organisation_id), assistant, query, embeddings
            )

    async def search_products(query: str, filters: ProductFilters, limit: int) -> list[ProductHit]:
        async with database.transaction() as session:
            return await product_answers.search_products_for(
                TenantScope(session, organisation_id),
                query,
                filters,
                limit,
                embeddings=embeddings,
                redact=assistant.redact_personal_data,
                assistant_id=assistant.id,
            )

    responder = Responder(settings, chat_provider=chat_provider)
    answer = await responder.decide(
        assistant,
        question,
        hits,
        search=search_again,
        log_context={"assistant_id": str(assistant.id), "preview": "true"},
        catalogue=catalogue,
        search_products=search_products if catalogue is not None else None,
    )
    now = datetime.now(UTC)
    first_reply = not any(speaker != "customer" for speaker, _ in question.history)
    disclosure = assistant.ai_disclosure.strip()
    return Preview(
        text=answer.text,
        disclosure=disclosure if first_reply and disclosure else None,
        outcome=answer.outcome,
        reason=_reason(answer, assistant, hits, embeddings is not None, now, active=active),
        reason_code=answer.reason,
        handed_off_by=answer.handoff.matched if answer.handoff else None,
        within_business_hours=intents.within_business_hours(assistant.business_hours, now),
        offers_person=answer.offer_human,
        system=answer.system,
        threshold=_threshold(embeddings is not None),
        sources=_sources(answer, hits),
        responder="model" if answer.provider not in (None, "extractive") else "extractive",
        provider=answer.provider,
        model=answer.model,
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        model_error=answer.model_error,
        redacted=answer.redacted,
        assistant_active=active,
    )


def _threshold(dense: bool) -> str:
    if dense:
        return f"a similarity of at least {extractive.MIN_SIMILARITY:.2f}"
    return f"a word-match score of at least {extractive.MIN_BM25:.1f} (no embedding model)"


def _sources(answer: Answer, hits: Sequence[Hit]) -> list[PreviewSource]:
    cited = {
        str(record.get("item_id")): record.get("number")
        for record in answer.sources or ()
        if record.get("cited")
    }
    listed: list[PreviewSource] = [
        PreviewSource(
            item_id=hit.item_id,
            title=hit.title,
            kind="qa" if hit.kind == "qa" else "document",
            score=hit.score,
            lexical=hit.lexical.score,
            dense=hit.dense.score if hit.dense is not None else None,
            above_threshold=extractive.grounded(hit),
            cited=str(hit.item_id) in cited,
            number=_number(cited.get(str(hit.item_id))),
        )
        for hit in hits
    ]
    # Passages the model found with a search of its own: scores as it was given them.
    seen = {str(hit.item_id) for hit in hits}
    for record in answer.sources or ():
        item_id = str(record.get("item_id"))
        if item_id in seen:
            continue
        seen.add(item_id)
        listed.append(
            PreviewSource(
                item_id=uuid.UUID(item_id),
                title=str(record.get("title") or ""),
                kind=None,
                score=float(record.get("score") or 0.0),
                lexical=None,
                dense=None,
                above_threshold=True,
                cited=bool(record.get("cited")),
                number=_number(record.get("number")),
            )
        )
    return listed


def _number(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _reason(
    answer: Answer,
    assistant: AssistantView,
    hits: Sequence[Hit],
    dense: bool,
    now: datetime,
    *,
    active: bool,
) -> str:
    parts = [_why(answer, hits, dense)]
    if answer.handoff is not None:
        if not intents.within_business_hours(assistant.business_hours, now):
            parts.append(
                "It is outside your business hours, so the customer is told when you open."
            )
        parts.append(
            "In a real conversation the assistant then stays silent until someone on your "
            "team hands it back."
        )
    if answer.model_error is not None:
        parts.append(
            f"The model could not be used ({answer.model_error}), so the offline answer "
            "was given instead."
        )
    elif assistant.llm_provider == LlmProvider.EXTRACTIVE and answer.reason == "extractive":
        parts.append("No model is connected: the answer is quoted word for word.")
    if not active:
        parts.append("This assistant is switched off: customers get no answer from it now.")
    return " ".join(parts)


def _why(answer: Answer, hits: Sequence[Hit], dense: bool) -> str:
    request = answer.handoff
    match answer.reason:
        case "handoff_button":
            return "The customer chose to talk to a person."
        case "handoff_request" if request is not None:
            if request.reason == intents.REASON_KEYWORD:
                return f'The message contains your hand-off word "{request.matched}".'
            if request.human_review:
                return f'The message asks for a person to review a decision ("{request.matched}").'
            return f'The message asks for a person ("{request.matched}").'
        case "handoff_by_model" if request is not None:
            return f"The model asked for a person to take over: {request.reason}"
        case "data_request":
            return (
                "The message exercises a right over the customer's data (privacy policy "
                "§14): in a real conversation a request is recorded for your team under "
                "Privacy requests. The test chat records nothing."
            )
        case "not_text":
            return "The message has no text to read."
        case "greeting":
            return "The message is a greeting, so the assistant greets back without searching."
        case "product_choice":
            return "The customer picked a product from a list: the answer is its card."
        case "no_grounded_source":
            if not hits:
                return (
                    "Nothing in the knowledge base matches the question, so the assistant "
                    "sends its fallback message and offers a person."
                )
            return (
                "No source is close enough to the question (it takes "
                f"{_threshold(dense)}), so the assistant sends its fallback message and "
                "offers a person."
            )
        case "model_answer":
            if answer.grounded:
                return "The model answered from the sources it was given and cites them."
            return (
                "The model answered without citing a source, so the answer counts as not "
                "grounded in your knowledge base."
            )
        case "model_empty":
            return "The model gave no answer, so the assistant sends its fallback message."
        case "extractive":
            title = hits[0].title if hits else ""
            return f'Quoted from the best-matching source, "{title}".'
        case "extractive_not_grounded":
            return (
                "The best-ranked source is not close enough to quote (it takes "
                f"{_threshold(dense)}), so the assistant sends its fallback message."
            )
        case "products":
            return (
                "The question asks for products: the answer lists the catalogue's matches "
                "that meet its price, size, colour and stock constraints, as cards."
            )
        case "no_matching_product":
            return (
                "The question asks for products, but none of the catalogue's meets its "
                "constraints and no source answers it, so the assistant says so and offers "
                "a person."
            )
    return "The assistant answered."
