"""The reply pipeline: from a customer's message to the assistant's answer on its way.

1. Read (one statement, see ``conversations.replies``): whether the message is still to be
   answered, its conversation, the assistant, the recent turns; then the knowledge base's
   best passages for the question. On WhatsApp the customer's message is marked read, with
   a typing indicator, while the answer is made.
2. Decide, outside any transaction (a language model may take seconds): a handoff request
   is honoured at once; a bare greeting gets the assistant's greeting; otherwise the
   answer comes from the assistant's provider, grounded in numbered sources. With no
   source above the grounding threshold the customer gets the fallback message and an
   offer of a person. A failing external model degrades to the offline extractive answer.
3. Write (one statement, under the conversation's row lock): if the conversation is
   still the assistant's, the message still unanswered and still the customer's latest,
   the answer is stored. The first reply of a conversation starts with the AI disclosure
   (policy §7).
4. Send: on WhatsApp the job sends the answer itself when the write could claim it (no
   earlier message of the conversation waiting, the service window open); otherwise, or
   when Meta throttles, the delivery job sends it. Web chat delivers by storing.

Exactly once: a reply row points at the message it answers through a unique column, so a
job run again after a crash finds the earlier answer and stops, handing an answer it left
unsent to the delivery job; an answer either is claimed by the job that wrote it or
commits together with its delivery job.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog
from sqlalchemy import Row

from cybergine.assistants.models import Assistant, LlmProvider
from cybergine.channels.whatsapp import delivery
from cybergine.channels.whatsapp.delivery import Claim
from cybergine.channels.whatsapp.graph import GraphError
from cybergine.channels.whatsapp.tasks import SEND_RETRY
from cybergine.conversations import intents, replies
from cybergine.conversations.models import (
    Channel,
    Conversation,
    Sender,
)
from cybergine.conversations.service import defer_send, hand_off
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.egress import OutboundPolicy
from cybergine.errors import InvalidInput
from cybergine.knowledge.embeddings import EmbeddingProvider
from cybergine.knowledge.search import Hit
from cybergine.knowledge.service import search_knowledge
from cybergine.llm import extractive, prompts
from cybergine.llm.endpoints import ChatEndpoints
from cybergine.llm.providers import (
    HANDOFF_TOOL,
    SEARCH_KNOWLEDGE_TOOL,
    ChatMessage,
    LLMError,
    LLMProvider,
    OpenAICompatibleChat,
)
from cybergine.llm.redaction import Redactor
from cybergine.queue import RetryLater
from cybergine.realtime.events import Event, publish
from cybergine.settings import Settings

log = structlog.get_logger(__name__)

HISTORY_TURNS = 10
RETRIEVAL_K = 5
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

Outcome = Literal[
    "answered",
    "fallback",
    "greeted",
    "handed_off",
    "already_answered",
    "not_for_the_assistant",
    "superseded",
    "gone",
]


@dataclass
class Answer:
    text: str
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
    sender: Sender = Sender.ASSISTANT


@dataclass
class _Context:
    message_id: uuid.UUID
    organisation_id: uuid.UUID
    conversation_id: uuid.UUID
    customer_id: uuid.UUID
    channel: Channel
    text: str | None
    type: str
    choice_id: str | None
    assistant: _AssistantView
    history: list[tuple[Literal["customer", "assistant", "agent"], str]] = field(
        default_factory=list
    )
    hits: list[Hit] = field(default_factory=list)
    # WhatsApp: the read receipt (with typing indicator) runs while the answer is made.
    marking_read: asyncio.Task[bool] | None = None
    marked_read: bool = False
    send_to: _SendTo | None = None  # WhatsApp: where the answer goes
    reply_id: uuid.UUID | None = None  # once written


@dataclass(frozen=True)
class _SendTo:
    phone_number_id: str
    access_token: str
    wa_id: str


@dataclass(frozen=True)
class _AssistantView:
    """What the pipeline needs of an assistant, detached from the session."""

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
    def of(cls, a: Assistant) -> _AssistantView:
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


class Pipeline:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        embeddings: EmbeddingProvider | None,
        *,
        chat_provider: LLMProvider | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.embeddings = embeddings
        self._chat_override = chat_provider

    async def reply(self, message_id: uuid.UUID) -> Outcome:
        context, outcome = await self._read(message_id)
        if context is None:
            assert outcome is not None
            return outcome
        try:
            answer = await self._decide(context)
            if context.marking_read is not None:
                context.marked_read = await context.marking_read
        except BaseException:
            if context.marking_read is not None:
                context.marking_read.cancel()
            if context.channel == Channel.WEBCHAT:
                async with self.database.autocommit() as session:
                    await publish(session, _typing(context, on=False))
            raise
        outcome, claim = await self._write(context, answer)
        if claim is not None:
            await self._send_now(context, claim)
        return outcome

    # --- 1. read -------------------------------------------------------------------

    async def _read(self, message_id: uuid.UUID) -> tuple[_Context | None, Outcome | None]:
        # Reads only, each on its own: the write re-checks everything under a lock.
        async with self.database.autocommit() as session:
            state = await replies.read_state(session, message_id, history_turns=HISTORY_TURNS)
            if state is None:
                return None, "gone"
            if state.verdict == "already_answered":
                await self._resume_delivery(state)
            if state.verdict is not None:
                return None, state.verdict
            scope = TenantScope(session, state.organisation_id)
            assistant = await _assistant_view(scope, state)
            if assistant is None:
                return None, "not_for_the_assistant"
            choice = (state.payload or {}).get("choice_id")
            context = _Context(
                message_id=message_id,
                organisation_id=state.organisation_id,
                conversation_id=state.conversation_id,
                customer_id=state.customer_id,
                channel=state.channel,
                text=(state.text or "").strip() or None,
                type=state.type,
                choice_id=choice if isinstance(choice, str) else None,
                assistant=assistant,
                history=_turns(state.history),
            )
            if state.channel == Channel.WHATSAPP and state.phone_number_id is not None:
                context.send_to = _SendTo(
                    state.phone_number_id, state.access_token, state.customer_wa_id
                )
                if state.number_active:
                    # Blue ticks and "typing…" on the customer's phone while the answer is
                    # prepared (Meta: show it only when a reply will follow; one will).
                    context.marking_read = asyncio.create_task(self._mark_read(state))
            elif state.channel == Channel.WEBCHAT:
                # The widget shows "typing…" until the answer arrives (the answer's own
                # event ends it; so does the typing-off event if no answer is written).
                await publish(session, _typing(context, on=True))
            if context.text and not _quick_decision(context):
                context.hits = await self._search(scope, context.assistant, context.text)
            return context, None

    async def _mark_read(self, state: Row[Any]) -> bool:
        if not state.external_id:
            return False
        graph = delivery.graph_client(self.settings.whatsapp_graph_url)
        try:
            await graph.mark_read(
                state.phone_number_id, state.access_token, state.external_id, typing_indicator=True
            )
        except GraphError as error:  # a missing blue tick is not worth a failed reply
            log.info("whatsapp.mark_read_failed", error=str(error))
            return False
        return True

    async def _resume_delivery(self, state: Row[Any]) -> None:
        """A run that answered and then died before its answer went out (``kill -9``
        mid-send) leaves the answer queued or sending; the delivery job takes it from
        there, waiting for a status webhook first if Meta may already have it."""
        if state.channel != Channel.WHATSAPP or state.answer_status not in replies.ANSWER_PENDING:
            return
        async with self.database.transaction() as session:
            await defer_send(session, state.conversation_id, state.answer_id)

    async def _search(self, scope: TenantScope, assistant: _AssistantView, query: str) -> list[Hit]:
        try:
            return await search_knowledge(
                scope,
                query=query[:2000],
                k=RETRIEVAL_K,
                collections=assistant.knowledge_collections or None,
                provider=self.embeddings,
            )
        except InvalidInput:
            return []

    # --- 2. decide -----------------------------------------------------------------

    async def _decide(self, context: _Context) -> Answer:
        assistant = context.assistant
        quick = _quick_decision(context)
        if quick == "handoff":
            request = _handoff_request(context)
            assert request is not None
            return Answer(
                text=_handoff_notice(assistant),
                sender=Sender.SYSTEM,
                handoff=request,
            )
        if quick == "not_text":
            return Answer(text=NOT_TEXT)
        if quick == "greeting":
            return Answer(text=assistant.greeting.strip() or DEFAULT_GREETING)
        assert context.text is not None

        grounded_hits = [hit for hit in context.hits if extractive.grounded(hit)]
        if not grounded_hits:
            return Answer(text=assistant.fallback_message, grounded=False, offer_human=True)
        if assistant.llm_provider == LlmProvider.OPENAI:
            try:
                return await self._generate(context)
            except LLMError as error:
                # The customer still gets the best offline answer; the team sees why.
                log.warning(
                    "reply.llm_failed",
                    conversation_id=str(context.conversation_id),
                    status=error.status,
                    error=str(error),
                )
        return _extractive_answer(context)

    async def _generate(self, context: _Context) -> Answer:
        assistant = context.assistant
        # The platform's key only to the platform's URL, even for a row saved before
        # that rule was checked on save.
        endpoint = ChatEndpoints.of(self.settings).choose(
            assistant.llm_base_url, assistant.llm_api_key
        )
        provider = self._chat_override or _chat_provider(
            endpoint.base_url, endpoint.api_key, assistant.llm_model, endpoint.policy
        )
        redactor = Redactor() if assistant.redact_personal_data else None
        assert context.text is not None
        sources = prompts.numbered_sources([h for h in context.hits if extractive.grounded(h)])
        messages: list[ChatMessage] = prompts.build_messages(
            prompts.system_prompt(assistant, now=datetime.now(UTC)),
            context.history,
            context.text,
            sources,
            redactor=redactor,
        )
        prompt_tokens = completion_tokens = 0
        for _ in range(MAX_TOOL_ROUNDS):
            completion = await provider.complete(
                messages,
                tools=(SEARCH_KNOWLEDGE_TOOL, HANDOFF_TOOL),
                temperature=assistant.temperature,
                max_tokens=assistant.max_tokens,
            )
            prompt_tokens += completion.usage.prompt_tokens
            completion_tokens += completion.usage.completion_tokens
            if not completion.tool_calls:
                break
            messages.append(
                ChatMessage(
                    role="assistant",
                    content=completion.content,
                    tool_calls=completion.tool_calls,
                )
            )
            for call in completion.tool_calls:
                if call.name == HANDOFF_TOOL.name:
                    reason = str(call.arguments.get("reason") or "The assistant asked for help.")
                    return Answer(
                        text=_handoff_notice(assistant),
                        sender=Sender.SYSTEM,
                        handoff=intents.HandoffRequest(
                            reason=reason[:500], human_review=False, matched="handoff_to_human"
                        ),
                        provider=provider.name,
                        model=completion.model,
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                    )
                result = await self._tool_search(context, call.arguments, sources)
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
        if not text:
            return Answer(text=assistant.fallback_message, grounded=False, offer_human=True)
        footer = prompts.sources_footer(sources, cited)
        return Answer(
            text=text,
            footer=f"\n\n{footer}" if footer else "",
            grounded=bool(cited),
            sources=[_source_record(s, s.number in cited) for s in sources],
            provider=provider.name,
            model=completion.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    async def _tool_search(
        self, context: _Context, arguments: dict[str, Any], sources: list[prompts.Source]
    ) -> str:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            return "Say what to search for."
        async with self.database.transaction() as session:
            hits = await self._search(
                TenantScope(session, context.organisation_id), context.assistant, query
            )
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

    # --- 3. write ------------------------------------------------------------------

    async def _write(self, context: _Context, answer: Answer) -> tuple[Outcome, Claim | None]:
        """The answer, in one statement that checks again that it is still wanted (see
        ``conversations.replies``); a handoff goes in the same transaction."""
        payload: dict[str, Any] | None = None
        if answer.offer_human:
            payload = {"buttons": [{"id": HANDOFF_BUTTON_ID, "title": HANDOFF_BUTTON_TITLE}]}
        stored = replies.Reply(
            sender=answer.sender,
            type="interactive" if payload else "text",
            text=answer.text,
            footer=answer.footer,
            disclosure=f"{context.assistant.ai_disclosure.strip()}\n\n",
            payload=payload,
            sources=answer.sources,
            grounded=answer.grounded,
            llm_provider=answer.provider,
            llm_model=answer.model,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
        )
        session_of = (
            self.database.autocommit if answer.handoff is None else self.database.transaction
        )
        async with session_of() as session:
            written = await replies.write_answer(
                session,
                context.message_id,
                stored,
                marked_read=context.marked_read,
                default_send_rate=self.settings.whatsapp_send_rate,
            )
            if written.verdict is not None:
                if context.channel == Channel.WEBCHAT:
                    await publish(session, _typing(context, on=False))
                return written.verdict, None
            if answer.handoff is not None:
                # Locked by the write: the statement took the conversation's row lock.
                conversation = await session.get(Conversation, context.conversation_id)
                assert conversation is not None
                await hand_off(
                    session,
                    conversation,
                    reason=answer.handoff.reason,
                    human_review=answer.handoff.human_review,
                    public_url=self.settings.public_url,
                )
        assert written.id is not None
        assert written.text is not None
        context.reply_id = written.id
        claim: Claim | None = None
        if written.send_now:
            assert context.send_to is not None
            assert written.number_id is not None
            claim = Claim(
                number_id=written.number_id,
                phone_number_id=context.send_to.phone_number_id,
                access_token=context.send_to.access_token,
                send_rate=written.send_rate or self.settings.whatsapp_send_rate,
                bodies=delivery.bodies_of(
                    written.id, stored.type, written.text, payload, to=context.send_to.wa_id
                ),
                parts_sent=0,
                mark_read=None,
                first_slot_wait=written.slot_wait,
            )
        if answer.handoff is not None:
            return "handed_off", claim
        if answer.grounded is False:
            return "fallback", claim
        if answer.grounded is None:
            return "greeted", claim
        return "answered", claim

    async def _send_now(self, context: _Context, claim: Claim) -> None:
        assert context.reply_id is not None
        graph = delivery.graph_client(self.settings.whatsapp_graph_url)
        try:
            await delivery.deliver(
                self.database, graph, context.reply_id, claim, last_attempt=False
            )
        except RetryLater as later:
            # Meta is throttling: the delivery job retries from here, after the delay
            # its own first retry would have waited.
            delay = max(SEND_RETRY.delay_for(0), min(later.seconds or 0, SEND_RETRY.cap_seconds))
            when = datetime.now(UTC) + timedelta(seconds=delay)
            async with self.database.transaction() as session:
                await defer_send(
                    session, context.conversation_id, context.reply_id, schedule_at=when
                )


def _typing(context: _Context, *, on: bool) -> Event:
    return Event(
        context.organisation_id,
        context.conversation_id,
        "typing",
        customer_id=context.customer_id,
        data={"on": on},
    )


# Assistants change rarely and are read for every reply: the view is kept per version
# (``updated_at``, which every change moves), so a change is seen by the next reply.
_ASSISTANT_VIEWS: dict[tuple[uuid.UUID, datetime], _AssistantView] = {}
_ASSISTANT_VIEWS_KEPT = 256


async def _assistant_view(scope: TenantScope, state: Row[Any]) -> _AssistantView | None:
    if state.assistant_updated_at is None:  # gone, or switched off
        return None
    key = (state.assistant_id, state.assistant_updated_at)
    view = _ASSISTANT_VIEWS.get(key)
    if view is None:
        assistant = await scope.find(Assistant, state.assistant_id)
        if assistant is None or not assistant.active:
            return None
        view = _AssistantView.of(assistant)
        if len(_ASSISTANT_VIEWS) >= _ASSISTANT_VIEWS_KEPT:
            _ASSISTANT_VIEWS.clear()
        _ASSISTANT_VIEWS[(assistant.id, assistant.updated_at)] = view
    return view


def _turns(history: list[list[str]]) -> list[tuple[Literal["customer", "assistant", "agent"], str]]:
    turns: list[tuple[Literal["customer", "assistant", "agent"], str]] = []
    for sender, text in history:
        role: Literal["customer", "assistant", "agent"] = (
            "customer"
            if sender == Sender.CUSTOMER
            else "agent"
            if sender == Sender.AGENT
            else "assistant"
        )
        turns.append((role, text or ""))
    return turns


def _handoff_request(context: _Context) -> intents.HandoffRequest | None:
    if context.choice_id == HANDOFF_BUTTON_ID:
        return intents.HandoffRequest(
            reason="The customer chose to talk to a person.", human_review=False, matched="button"
        )
    if not context.text:
        return None
    return intents.detect_handoff(
        context.text, context.assistant.languages, context.assistant.handoff_keywords
    )


def _quick_decision(context: _Context) -> Literal["handoff", "not_text", "greeting"] | None:
    if _handoff_request(context) is not None:
        return "handoff"
    if not context.text:
        return "not_text"
    if intents.is_greeting(context.text):
        return "greeting"
    return None


def _handoff_notice(assistant: _AssistantView) -> str:
    now = datetime.now(UTC)
    if intents.within_business_hours(assistant.business_hours, now):
        return HANDOFF_NOTICE
    opening = intents.next_opening(assistant.business_hours, now)
    when = f" ({opening:%A %H:%M})" if opening is not None else ""
    return HANDOFF_NOTICE_CLOSED.format(when=when)


def _extractive_answer(context: _Context) -> Answer:
    assert context.text is not None
    result = extractive.answer(
        context.text, context.hits, fallback_message=context.assistant.fallback_message
    )
    return Answer(
        text=result.body,
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


@functools.lru_cache(maxsize=64)
def _chat_provider(
    base_url: str, api_key: str | None, model: str, policy: OutboundPolicy | None
) -> OpenAICompatibleChat:
    """One client per endpoint, key, model and policy in this process, for connection reuse."""
    return OpenAICompatibleChat(base_url=base_url, api_key=api_key, model=model, policy=policy)


__all__: Sequence[str] = ("Answer", "Outcome", "Pipeline")
