"""Deciding the assistant's answer to one question: the one implementation behind a
customer's conversation (``conversations.pipeline``) and the dashboard's test chat
(``conversations.preview``).

Given the assistant's settings, the question with the turns before it, and the knowledge
base's best passages for it: a request for a person is honoured at once; a bare greeting
gets the assistant's greeting; otherwise the answer comes from the assistant's provider,
grounded in numbered sources. With no source above the grounding threshold the answer is
the fallback message and an offer of a person. A failing external model degrades to the
offline extractive answer, and the answer says why (``model_error``).

Nothing here stores anything: the callers write (the pipeline) or show (the preview)
the :class:`Answer`. Retrieval runs in the caller's session (:func:`retrieve`); a model's
own search (a tool call) through the ``search`` function the caller gives.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from cybergine.assistants.models import Assistant, LlmProvider
from cybergine.catalog.search import STOCK_WORDS, cards_text
from cybergine.conversations import data_request_replies, intents, product_answers
from cybergine.conversations.intent_phrases.products import PHRASES as PRODUCT_PHRASES
from cybergine.conversations.product_cards import ProductCard
from cybergine.db.tenancy import TenantScope
from cybergine.errors import InvalidInput
from cybergine.knowledge.embeddings import EmbeddingProvider
from cybergine.knowledge.search import Hit
from cybergine.knowledge.service import search_knowledge
from cybergine.llm import extractive, prompts
from cybergine.llm.endpoints import ChatEndpoints
from cybergine.llm.providers import (
    HANDOFF_TOOL,
    SEARCH_KNOWLEDGE_TOOL,
    SEARCH_PRODUCTS_TOOL,
    ChatMessage,
    LLMError,
    LLMProvider,
    ToolCall,
    ToolSpec,
)
from cybergine.llm.redaction import Redactor
from cybergine.privacy.request_models import RESPONSE_DAYS
from cybergine.settings import Settings

log = structlog.get_logger(__name__)

HISTORY_TURNS = 10
RETRIEVAL_K = 5
MAX_QUERY_CHARS = 2000
MAX_TOOL_ROUNDS = 3
HANDOFF_BUTTON_ID = "cybergine:handoff"
HANDOFF_BUTTON_TITLE = "Talk to a person"
HANDOFF_NOTICE = (
    "I've asked a person from our team to join. They'll reply here as soon as they can."
)
HANDOFF_NOTICE_CLOSED = (
    "I've asked a person from our team to join. We're closed right now; "
    "they'll reply here when we open{when}."
)
NOT_TEXT = "I can only read text messages for now. Could you write your question?"
DEFAULT_GREETING = "Hello! How can I help you today?"

Turn = tuple[prompts.Speaker, str]
# Runs a knowledge search for a model's tool call: the query in, the best passages out.
Search = Callable[[str], Awaitable[list[Hit]]]

# Why the answer is what it is, for the people who configure the assistant.
Reason = Literal[
    "handoff_button",  # the customer tapped "Talk to a person"
    "handoff_request",  # the customer's words asked for a person (``Answer.handoff``)
    "handoff_by_model",  # the model decided a person should take over
    "data_request",  # the customer exercises a right over their data (policy §14)
    "not_text",  # a photo, a sticker: nothing to read
    "greeting",  # a bare hello
    "product_choice",  # the customer picked a product from the cards offered (a list row)
    "no_grounded_source",  # nothing in the knowledge base scored above the threshold
    "model_answer",  # the model answered from the numbered sources
    "model_empty",  # the model said nothing usable: the fallback message
    "extractive",  # quoted from the best source, no model
    "extractive_not_grounded",  # the best-ranked source fell below the threshold
    "products",  # the catalogue's products answer the question (offline, with cards)
    "no_matching_product",  # a product question no product matches (offline)
]


@dataclass
class Answer:
    text: str
    reason: Reason
    # The sources as a line of text, for channels that cannot show them apart (WhatsApp).
    footer: str = ""
    grounded: bool | None = None
    sources: list[dict[str, Any]] | None = None
    provider: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    offer_human: bool = False
    handoff: intents.HandoffRequest | None = None
    # The right the customer exercises (a ``privacy_requests.kind``): a request is opened.
    data_request: str | None = None
    system: bool = False  # said by the platform (a handoff notice), not the assistant
    # The external model failed and the offline answer stood in: the server's message.
    model_error: str | None = None
    redacted: bool = False  # personal data was masked before the text left for the model
    # Product cards the answer shows (``messages.payload["products"]``).
    products: list[dict[str, Any]] | None = None

    @property
    def outcome(self) -> Literal["answered", "fallback", "greeted", "handed_off"]:
        if self.handoff is not None:
            return "handed_off"
        if self.grounded is False:
            return "fallback"
        if self.grounded is None:
            return "greeted"
        return "answered"


@dataclass(frozen=True)
class AssistantView:
    """What answering needs of an assistant, detached from the session."""

    id: uuid.UUID
    name: str
    persona: str
    instructions: str
    tone: str
    languages: list[str]
    greeting: str
    fallback_message: str
    ai_disclosure: str
    knowledge_collections: list[str]
    llm_provider: LlmProvider
    llm_model: str
    llm_base_url: str | None
    llm_api_key: str | None
    temperature: float
    max_tokens: int
    redact_personal_data: bool
    business_hours: dict[str, Any] | None
    handoff_keywords: list[str]

    @classmethod
    def of(cls, a: Assistant) -> AssistantView:
        return cls(
            id=a.id,
            name=a.name,
            persona=a.persona,
            instructions=a.instructions,
            tone=a.tone.value,
            languages=list(a.languages),
            greeting=a.greeting,
            fallback_message=a.fallback_message,
            ai_disclosure=a.ai_disclosure,
            knowledge_collections=list(a.knowledge_collections),
            llm_provider=a.llm_provider,
            llm_model=a.llm_model,
            llm_base_url=a.llm_base_url,
            llm_api_key=a.llm_api_key,
            temperature=a.temperature,
            max_tokens=a.max_tokens,
            redact_personal_data=a.redact_personal_data,
            business_hours=a.business_hours,
            handoff_keywords=list(a.handoff_keywords),
        )


@dataclass(frozen=True)
class Question:
    """A customer's message as answering sees it: its text (stripped; None when it has
    none), the button it tapped, and the conversation's turns before it, oldest first."""

    text: str | None
    choice_id: str | None = None
    history: Sequence[Turn] = field(default_factory=tuple)
    # The product the tapped choice names, among the cards this conversation was shown.
    product: ProductCard | None = None


def handoff_request(assistant: AssistantView, question: Question) -> intents.HandoffRequest | None:
    if question.choice_id == HANDOFF_BUTTON_ID:
        return intents.HandoffRequest(
            reason="The customer chose to talk to a person.", human_review=False, matched="button"
        )
    if not question.text:
        return None
    return intents.detect_handoff(question.text, assistant.languages, assistant.handoff_keywords)


def data_request(assistant: AssistantView, question: Question) -> intents.DataRequest | None:
    if not question.text:
        return None
    return intents.detect_data_request(question.text, assistant.languages)


def data_request_confirmation(request: intents.DataRequest) -> str:
    """What a customer exercising a right in the chat is told (policy §14), in the
    language they asked in: the team verifies them and answers within the policy's days.
    The request itself is recorded by the caller that stores the answer."""
    return data_request_replies.CONFIRMATIONS[request.language].format(
        what=data_request_replies.WHAT[request.language][request.kind], days=RESPONSE_DAYS
    )


def request_answer(assistant: AssistantView, question: Question, now: datetime) -> Answer | None:
    """The answer to what the customer's words ask, by phrase alone (no model, no search):
    a person (a review of an automated decision among them, policy §7), or a right over
    their data (§14), which the caller records. None: they ask for neither."""
    handoff = handoff_request(assistant, question)
    if handoff is not None:
        reason: Reason = "handoff_button" if handoff.matched == "button" else "handoff_request"
        return Answer(handoff_notice(assistant, now), reason, system=True, handoff=handoff)
    asked = data_request(assistant, question)
    if asked is None:
        return None
    text = data_request_confirmation(asked)
    return Answer(text, "data_request", system=True, data_request=asked.kind)


def quick_decision(
    assistant: AssistantView, question: Question
) -> Literal["handoff", "product", "data_request", "not_text", "greeting"] | None:
    """What is decided before (and instead of) a knowledge search."""
    if handoff_request(assistant, question) is not None:
        return "handoff"
    if question.product is not None:
        return "product"
    if not question.text:
        return "not_text"
    if data_request(assistant, question) is not None:
        return "data_request"
    if intents.is_greeting(question.text):
        return "greeting"
    return None


def needs_search(assistant: AssistantView, question: Question) -> bool:
    return bool(question.text) and quick_decision(assistant, question) is None


def handoff_notice(assistant: AssistantView, now: datetime) -> str:
    if intents.within_business_hours(assistant.business_hours, now):
        return HANDOFF_NOTICE
    opening = intents.next_opening(assistant.business_hours, now)
    when = f" ({opening:%A %H:%M})" if opening is not None else ""
    return HANDOFF_NOTICE_CLOSED.format(when=when)


async def retrieve(
    scope: TenantScope,
    assistant: AssistantView,
    query: str,
    embeddings: EmbeddingProvider | None,
) -> list[Hit]:
    """The knowledge base's best passages for ``query``, from the assistant's collections.
    The query's vector can come from an external embeddings endpoint: it is given the
    query redacted as a prompt is (policy §7, §8)."""
    query = query[:MAX_QUERY_CHARS]
    try:
        return await search_knowledge(
            scope,
            query=query,
            k=RETRIEVAL_K,
            collections=assistant.knowledge_collections or None,
            provider=embeddings,
            embedded_query=Redactor().redact(query) if assistant.redact_personal_data else None,
            answering=assistant.id,
        )
    except InvalidInput:
        return []


class Responder:
    """Decides answers with the platform's settings (which model endpoint, which key)."""

    def __init__(self, settings: Settings, *, chat_provider: LLMProvider | None = None) -> None:
        self.settings = settings
        self._chat_override = chat_provider

    async def decide(
        self,
        assistant: AssistantView,
        question: Question,
        hits: Sequence[Hit],
        *,
        search: Search,
        log_context: dict[str, str] | None = None,
        catalogue: product_answers.Catalogue | None = None,
        search_products: product_answers.SearchProducts | None = None,
    ) -> Answer:
        """The answer to ``question``; ``hits``: retrieval's passages for its text (empty
        when :func:`needs_search` says none are needed); ``catalogue``: what the
        organisation's products say about it (None without products), and
        ``search_products`` the model's product search (offered as a tool when given)."""
        now = datetime.now(UTC)
        quick = quick_decision(assistant, question)
        if quick in ("handoff", "data_request"):
            asked = request_answer(assistant, question, now)
            assert asked is not None
            return asked
        if quick == "product":
            # A list row shows neither image nor link: the answer is the product's card
            # (on WhatsApp its image with the details and the link as the caption).
            assert question.product is not None
            card = question.product.view()
            words = next(
                (
                    PRODUCT_PHRASES[code].stock_words
                    for code in assistant.languages
                    if code in PRODUCT_PHRASES
                ),
                STOCK_WORDS,
            )
            return Answer(
                text=cards_text([card], stock_words=words),
                reason="product_choice",
                grounded=True,
                products=[card],
            )
        if quick == "not_text":
            return Answer(text=NOT_TEXT, reason="not_text")
        if quick == "greeting":
            return Answer(text=assistant.greeting.strip() or DEFAULT_GREETING, reason="greeting")
        assert question.text is not None

        grounded_hits = [hit for hit in hits if extractive.grounded(hit)]
        uses_model = assistant.llm_provider == LlmProvider.OPENAI
        products = product_answers.offline_reply(catalogue, hits) if not uses_model else None
        if not grounded_hits and products is None and not (uses_model and search_products):
            return _no_grounded_source(assistant)
        model_error: str | None = None
        if uses_model:
            try:
                return await self._generate(
                    assistant, question, list(hits), search, now, search_products
                )
            except LLMError as error:
                # The customer still gets the best offline answer; the team sees why.
                log.warning(
                    "reply.llm_failed",
                    **(log_context or {}),
                    status=error.status,
                    error=str(error),
                )
                model_error = str(error)
            products = product_answers.offline_reply(catalogue, hits)
        if products is not None:
            answer = _product_answer(products)
        elif not grounded_hits:
            answer = _no_grounded_source(assistant)
        else:
            answer = _extractive_answer(assistant, question.text, hits)
        answer.model_error = model_error
        return answer

    async def _generate(
        self,
        assistant: AssistantView,
        question: Question,
        hits: list[Hit],
        search: Search,
        now: datetime,
        search_products: product_answers.SearchProducts | None = None,
    ) -> Answer:
        # The platform's key only to the platform's URL, even for a row saved before
        # that rule was checked on save.
        endpoint = ChatEndpoints.of(self.settings).choose(
            assistant.llm_base_url, assistant.llm_api_key
        )
        # Imported where a model is first called, not at start (llm/providers.py).
        from cybergine.llm.openai_chat import shared_chat

        provider = self._chat_override or shared_chat(
            endpoint.base_url, endpoint.api_key, assistant.llm_model, endpoint.policy
        )
        redactor = Redactor() if assistant.redact_personal_data else None
        assert question.text is not None
        sources = prompts.numbered_sources([h for h in hits if extractive.grounded(h)])
        system = prompts.system_prompt(assistant, now=now)
        tools: tuple[ToolSpec, ...] = (SEARCH_KNOWLEDGE_TOOL, HANDOFF_TOOL)
        if search_products is not None:
            system = f"{system}\n{prompts.PRODUCTS_RULE}"
            tools = (SEARCH_KNOWLEDGE_TOOL, SEARCH_PRODUCTS_TOOL, HANDOFF_TOOL)
        shown: list[dict[str, Any]] = []  # the cards of every product search's results
        messages: list[ChatMessage] = prompts.build_messages(
            system,
            question.history,
            question.text,
            sources,
            redactor=redactor,
        )
        redacted = redactor is not None and bool(redactor.placeholders)
        prompt_tokens = completion_tokens = 0
        for _ in range(MAX_TOOL_ROUNDS):
            completion = await provider.complete(
                messages,
                tools=tools,
                temperature=assistant.temperature,
                max_tokens=assistant.max_tokens,
            )
            prompt_tokens += completion.usage.prompt_tokens
            completion_tokens += completion.usage.completion_tokens
            if not completion.tool_calls:
                break
            # The model's calls go back to it as its history, redacted as the prompt is.
            messages.append(
                ChatMessage(
                    role="assistant",
                    content=completion.content,
                    tool_calls=tuple(_redacted(call, redactor) for call in completion.tool_calls),
                )
            )
            for call in completion.tool_calls:
                if call.name == HANDOFF_TOOL.name:
                    reason = str(call.arguments.get("reason") or "The assistant asked for help.")
                    return Answer(
                        text=handoff_notice(assistant, now),
                        reason="handoff_by_model",
                        system=True,
                        handoff=intents.HandoffRequest(
                            reason=reason[:500], human_review=False, matched="handoff_to_human"
                        ),
                        provider=provider.name,
                        model=completion.model,
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                        redacted=redacted,
                    )
                if call.name == SEARCH_PRODUCTS_TOOL.name and search_products is not None:
                    result = await product_answers.run_tool(search_products, call.arguments, shown)
                else:
                    result = await _tool_search(search, call.arguments, sources)
                messages.append(ChatMessage(role="tool", content=result, tool_call_id=call.id))
        else:
            completion = await provider.complete(
                messages, temperature=assistant.temperature, max_tokens=assistant.max_tokens
            )
            prompt_tokens += completion.usage.prompt_tokens
            completion_tokens += completion.usage.completion_tokens

        text = (completion.content or "").strip()
        if redactor is not None:
            text = redactor.restore(text)
        valid = {source.number for source in sources}
        text = prompts.strip_unknown_citations(text, valid)
        cited = prompts.cited_numbers(text) & valid
        # The products the model was shown go with its answer, listed in its text too.
        text = product_answers.with_cards_text(text, shown).strip()
        if not text:
            return Answer(
                text=assistant.fallback_message,
                reason="model_empty",
                grounded=False,
                offer_human=True,
                provider=provider.name,
                model=completion.model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                redacted=redacted,
            )
        footer = prompts.sources_footer(sources, cited)
        return Answer(
            text=text,
            reason="model_answer",
            footer=f"\n\n{footer}" if footer else "",
            grounded=bool(cited) or bool(shown),
            products=shown or None,
            sources=[_source_record(s, s.number in cited) for s in sources],
            provider=provider.name,
            model=completion.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            redacted=redacted,
        )


async def _tool_search(
    search: Search, arguments: dict[str, Any], sources: list[prompts.Source]
) -> str:
    query = arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        return "Say what to search for."
    hits = await search(query)
    found = prompts.numbered_sources([h for h in hits if extractive.grounded(h)])
    numbers = {source.item_id: source.number for source in sources}
    lines = []
    for source in found:
        number = numbers.get(source.item_id)
        if number is None:  # new to this conversation's prompt: the next number
            number = len(sources) + 1
            sources.append(
                prompts.Source(number, source.title, source.text, source.item_id, source.score)
            )
            numbers[source.item_id] = number
        lines.append(f"[{number}] {source.title}\n{source.text}")
    return "\n\n".join(lines) or "Nothing in the knowledge base matches."


def _redacted(call: ToolCall, redactor: Redactor | None) -> ToolCall:
    """A tool call as it goes back to the model: its arguments redacted as the prompt is."""
    if redactor is None:
        return call
    return replace(
        call,
        arguments=redactor.redact_values(call.arguments),
        raw_arguments=None if call.raw_arguments is None else redactor.redact(call.raw_arguments),
    )


def _no_grounded_source(assistant: AssistantView) -> Answer:
    return Answer(
        text=assistant.fallback_message,
        reason="no_grounded_source",
        grounded=False,
        offer_human=True,
    )


def _product_answer(reply: product_answers.ProductReply) -> Answer:
    return Answer(
        text=reply.text,
        reason="products" if reply.cards else "no_matching_product",
        grounded=bool(reply.cards),
        offer_human=not reply.cards,
        products=reply.cards or None,
        provider="extractive",
    )


def _extractive_answer(assistant: AssistantView, question: str, hits: Sequence[Hit]) -> Answer:
    result = extractive.answer(question, hits, fallback_message=assistant.fallback_message)
    return Answer(
        text=result.body,
        reason="extractive" if result.grounded else "extractive_not_grounded",
        footer=result.source_line,
        grounded=result.grounded,
        offer_human=not result.grounded,
        sources=[
            {
                "number": c.number,
                "item_id": c.item_id,
                "title": c.title,
                "external_id": c.external_id,
                "cited": True,
            }
            for c in result.citations
        ]
        or None,
        provider="extractive",
    )


def _source_record(source: prompts.Source, cited: bool) -> dict[str, Any]:
    return {
        "number": source.number,
        "item_id": str(source.item_id),
        "title": source.title,
        "score": round(source.score, 4),
        "cited": cited,
    }


__all__: Sequence[str] = (
    "DEFAULT_GREETING",
    "HANDOFF_BUTTON_ID",
    "HANDOFF_BUTTON_TITLE",
    "HISTORY_TURNS",
    "NOT_TEXT",
    "Answer",
    "AssistantView",
    "Question",
    "Reason",
    "Responder",
    "Search",
    "Turn",
    "handoff_notice",
    "handoff_request",
    "needs_search",
    "quick_decision",
    "retrieve",
)
