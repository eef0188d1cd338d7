"""The reply pipeline: from a customer's message to the assistant's answer on its way.

1. Read (one statement, see ``conversations.replies``): whether the message is still to be
   answered, its conversation, the assistant, the recent turns; then the knowledge base's
   best passages for the question. The channel acknowledges the customer's message while
   the answer is made (WhatsApp: a read receipt with a typing indicator; web chat: a
   typing event).
2. Decide, outside any transaction (a language model may take seconds), with
   ``conversations.answering`` (the dashboard's test chat decides with it too): a handoff
   request is honoured at once; a bare greeting gets the assistant's greeting; otherwise
   the answer comes from the assistant's provider, grounded in numbered sources. With no
   source above the grounding threshold the customer gets the fallback message and an
   offer of a person. A failing external model degrades to the offline extractive answer.
3. Write (one statement, under the conversation's row lock): if the conversation is
   still the assistant's, the message still unanswered and still the customer's latest,
   the answer is stored. The first reply of a conversation starts with the AI disclosure
   (policy §7).
4. Send: on WhatsApp the job sends the answer itself when the write could claim it (no
   earlier message of the conversation waiting, the service window open); otherwise, or
   when Meta throttles, the delivery job sends it. Web chat delivers by storing. Each is
   the channel's adapter (``conversations.channel``): this module imports no channel.

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
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from cybergine.assistants.models import Assistant
from cybergine.catalog.search import ProductFilters, ProductHit
from cybergine.conversations import product_answers, replies
from cybergine.conversations.answering import (
    HANDOFF_BUTTON_ID,
    HANDOFF_BUTTON_TITLE,
    HISTORY_TURNS,
    Answer,
    AssistantView,
    Question,
    Responder,
    Turn,
    needs_search,
    request_answer,
    retrieve,
)
from cybergine.conversations.channel import (
    Address,
    ChannelAdapter,
    Claimed,
    Inbound,
    RichContent,
    adapter_for,
)
from cybergine.conversations.models import (
    Channel,
    Conversation,
    Sender,
)
from cybergine.conversations.product_choice import offered_product
from cybergine.conversations.service import hand_off
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.embeddings import EmbeddingProvider
from cybergine.knowledge.search import Hit
from cybergine.llm.providers import LLMProvider
from cybergine.observability import tracing
from cybergine.observability.metrics import reply_stored
from cybergine.privacy.request_actions import left_to_the_assistant_after_objecting, people_only
from cybergine.privacy.request_models import RequestKind
from cybergine.privacy.requests import open_from_chat
from cybergine.realtime.events import publish
from cybergine.settings import Settings
from cybergine.shopify import billing

log = structlog.get_logger(__name__)

Outcome = Literal[
    "answered",
    "fallback",
    "greeted",
    "handed_off",
    "already_answered",
    "not_for_the_assistant",
    "superseded",
    "restricted",
    "gone",
]


@dataclass
class _Context:
    message_id: uuid.UUID
    organisation_id: uuid.UUID
    conversation_id: uuid.UUID
    customer_id: uuid.UUID
    channel: Channel
    adapter: ChannelAdapter
    inbound: Inbound
    question: Question
    type: str
    assistant: AssistantView
    hits: list[Hit] = field(default_factory=list)
    # What the organisation's products say about the question (None: it shows none).
    catalogue: product_answers.Catalogue | None = None
    # A read receipt (WhatsApp, with typing indicator) runs while the answer is made.
    marking_read: asyncio.Task[bool] | None = None
    marked_read: bool = False
    # The customer's processing is restricted (policy §14): only ``answer``, the
    # acknowledgement of a right they exercise, decided before and instead of the rest.
    restricted: bool = False
    answer: Answer | None = None


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
        self.responder = Responder(settings, chat_provider=chat_provider)

    async def reply(self, message_id: uuid.UUID) -> Outcome:
        context, outcome = await self._read(message_id)
        if context is None:
            assert outcome is not None
            return outcome
        if context.answer is not None:
            outcome = await self._write_and_send(context, context.answer)
            reply_stored(message_id, context.channel, outcome)
            return outcome
        try:
            answer = await self.responder.decide(
                context.assistant,
                context.question,
                context.hits,
                search=functools.partial(self._search_again, context),
                log_context={"conversation_id": str(context.conversation_id)},
                catalogue=context.catalogue,
                search_products=functools.partial(self._search_products, context)
                if context.catalogue is not None
                else None,
            )
            if context.marking_read is not None:
                context.marked_read = await context.marking_read
        except BaseException:
            if context.marking_read is not None:
                context.marking_read.cancel()
            typing_ended = context.adapter.typing_ended(context.inbound)
            if typing_ended is not None:
                async with self.database.autocommit() as session:
                    await publish(session, typing_ended)
            raise
        outcome = await self._write_and_send(context, answer)
        reply_stored(message_id, context.channel, outcome)  # /metrics: the reply's latency
        return outcome

    async def _write_and_send(self, context: _Context, answer: Answer) -> Outcome:
        """Steps 3 and 4. On a channel that delivers by storing (web chat) the write is the
        send, and its span is named so (``observability.tracing``)."""
        by_storing = context.adapter.delivers_by_storing
        with tracing.span(
            f"send {context.channel.value}" if by_storing else "store answer",
            attributes={"messaging.system": context.channel.value},
        ):
            outcome, claimed = await self._write(context, answer)
        if claimed is not None:
            await context.adapter.send_claimed(self.database, self.settings, claimed)
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
            if state.verdict == "not_for_the_assistant" and (
                await left_to_the_assistant_after_objecting(
                    session,
                    organisation_id=state.organisation_id,
                    conversation_id=state.conversation_id,
                )
            ):
                # A conversation begun after the customer objected: people answer it, and
                # a right its words exercise (policy §14) is recorded for them.
                assistant = await _assistant_view(
                    TenantScope(session, state.organisation_id), state
                )
                asked = _right_asked(state, assistant) if assistant is not None else None
                async with self.database.transaction() as handing:
                    await people_only(
                        handing,
                        organisation_id=state.organisation_id,
                        conversation_id=state.conversation_id,
                        public_url=self.settings.public_url,
                    )
                    if asked is not None:
                        await open_from_chat(
                            handing,
                            organisation_id=state.organisation_id,
                            customer_id=state.customer_id,
                            channel=state.channel,
                            message_id=message_id,
                            kind=asked,
                        )
            if state.verdict is not None and state.verdict != "restricted":
                return None, state.verdict
            scope = TenantScope(session, state.organisation_id)
            assistant = await _assistant_view(scope, state)
            if assistant is None:
                return None, "not_for_the_assistant"
            if state.verdict == "restricted":
                return _rights_only(state, message_id, assistant)
            if await billing.beyond_allowance(
                session, state.organisation_id, state.conversation_id
            ):
                # Begun beyond the shop plan's monthly allowance: people answer it.
                async with self.database.transaction() as handing:
                    await billing.hand_to_team(
                        handing,
                        organisation_id=state.organisation_id,
                        conversation_id=state.conversation_id,
                        public_url=self.settings.public_url,
                    )
                return None, "not_for_the_assistant"
            choice = (state.payload or {}).get("choice_id")
            adapter = adapter_for(state.channel)
            inbound = Inbound(
                organisation_id=state.organisation_id,
                conversation_id=state.conversation_id,
                customer_id=state.customer_id,
                external_id=state.external_id,
                address=_address(state),
            )
            context = _Context(
                message_id=message_id,
                organisation_id=state.organisation_id,
                conversation_id=state.conversation_id,
                customer_id=state.customer_id,
                channel=state.channel,
                adapter=adapter,
                inbound=inbound,
                question=Question(
                    text=(state.text or "").strip() or None,
                    choice_id=choice if isinstance(choice, str) else None,
                    history=_turns(state.history),
                    product=await offered_product(
                        scope, state.conversation_id, choice if isinstance(choice, str) else None
                    ),
                ),
                type=state.type,
                assistant=assistant,
            )
            # Blue ticks and "typing…" on the customer's phone, or "typing…" in the
            # widget, while the answer is prepared (one will follow).
            context.marking_read = await adapter.acknowledge(session, inbound, self.settings)
            if needs_search(assistant, context.question):
                assert context.question.text is not None
                context.hits = await retrieve(
                    scope, assistant, context.question.text, self.embeddings
                )
                context.catalogue = await product_answers.look_up(
                    scope,
                    context.question.text,
                    languages=assistant.languages,
                    embeddings=self.embeddings,
                    redact=assistant.redact_personal_data,
                    assistant_id=assistant.id,
                )
            return context, None

    async def _resume_delivery(self, state: replies.MessageState) -> None:
        """A run that answered and then died before its answer went out (``kill -9``
        mid-send) leaves the answer queued or sending; the delivery job takes it from
        there, waiting for a status webhook first if Meta may already have it. (An answer
        on a channel that delivers by storing is never pending.)"""
        if state.answer_id is None or state.answer_status not in replies.ANSWER_PENDING:
            return
        async with self.database.transaction() as session:
            await adapter_for(state.channel).deliver(
                session, state.conversation_id, state.answer_id
            )

    # --- 2. decide (conversations.answering) ----------------------------------------

    async def _search_again(self, context: _Context, query: str) -> list[Hit]:
        """A model's own search (a tool call), in a short transaction of its own."""
        async with self.database.transaction() as session:
            return await retrieve(
                TenantScope(session, context.organisation_id),
                context.assistant,
                query,
                self.embeddings,
            )

    async def _search_products(
        self, context: _Context, query: str, filters: ProductFilters, limit: int
    ) -> list[ProductHit]:
        """A model's product search (a tool call), scoped to the conversation's
        organisation, in a short transaction of its own."""
        async with self.database.transaction() as session:
            return await product_answers.search_products_for(
                TenantScope(session, context.organisation_id),
                query,
                filters,
                limit,
                embeddings=self.embeddings,
                redact=context.assistant.redact_personal_data,
                assistant_id=context.assistant.id,
            )

    # --- 3. write ------------------------------------------------------------------

    async def _write(self, context: _Context, answer: Answer) -> tuple[Outcome, Claimed | None]:
        """The answer, in one statement that checks again that it is still wanted (see
        ``conversations.replies``); a handoff goes in the same transaction."""
        payload: dict[str, Any] | None = None
        if answer.offer_human:
            payload = {"buttons": [{"id": HANDOFF_BUTTON_ID, "title": HANDOFF_BUTTON_TITLE}]}
        if answer.products:
            # The words a channel adds around the cards (WhatsApp's list button, a row's
            # stock) are in the assistant's language.
            languages = context.assistant.languages
            payload = {
                **(payload or {}),
                "products": answer.products,
                "language": languages[0] if languages else "en",
            }
        stored = replies.Reply(
            sender=Sender.SYSTEM if answer.system else Sender.ASSISTANT,
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
        # A right the customer exercises (policy §14), or a human review they ask for, is
        # a request for the team, recorded with the answer that confirms it.
        opens_request = answer.data_request or (
            RequestKind.HUMAN_REVIEW.value
            if answer.handoff is not None and answer.handoff.human_review
            else None
        )
        session_of = (
            self.database.autocommit
            if answer.handoff is None and opens_request is None
            else self.database.transaction
        )
        async with session_of() as session:
            written = await replies.write_answer(
                session,
                context.message_id,
                stored,
                adapter=context.adapter,
                marked_read=context.marked_read,
                default_send_rate=self.settings.whatsapp_send_rate,
                rights_request=context.restricted,
            )
            if written.verdict is not None:
                typing_ended = context.adapter.typing_ended(context.inbound)
                if typing_ended is not None:
                    await publish(session, typing_ended)
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
            if opens_request is not None:
                await open_from_chat(
                    session,
                    organisation_id=context.organisation_id,
                    customer_id=context.customer_id,
                    channel=context.channel,
                    message_id=context.message_id,
                    kind=opens_request,
                )
        assert written.id is not None
        assert written.text is not None
        claimed: Claimed | None = None
        if written.send_now:
            address = context.inbound.address
            assert address is not None
            assert written.number_id is not None
            claimed = Claimed(
                message_id=written.id,
                conversation_id=context.conversation_id,
                account_row_id=written.number_id,
                address=address,
                send_rate=written.send_rate or self.settings.whatsapp_send_rate,
                slot_wait=written.slot_wait,
                content=RichContent(
                    written.id, stored.type, written.text, payload, to=address.customer_external_id
                ),
            )
        return answer.outcome, claimed


def _rights_answer(state: replies.MessageState, assistant: AssistantView) -> Answer | None:
    """The answer to a right the customer's message exercises, by phrase alone (no model,
    no embeddings, no history): a request about their data (policy §14), or a person's
    review of an automated decision (§7); None for anything else."""
    text = (state.text or "").strip() or None
    choice = (state.payload or {}).get("choice_id")
    question = Question(text=text, choice_id=choice if isinstance(choice, str) else None)
    answer = request_answer(assistant, question, datetime.now(UTC))
    if answer is None or (answer.handoff is not None and not answer.handoff.human_review):
        return None
    return answer


def _right_asked(state: replies.MessageState, assistant: AssistantView) -> str | None:
    """The kind of the privacy request the customer's message makes, if any."""
    answer = _rights_answer(state, assistant)
    if answer is None:
        return None
    return answer.data_request or RequestKind.HUMAN_REVIEW.value


def _rights_only(
    state: replies.MessageState, message_id: uuid.UUID, assistant: AssistantView
) -> tuple[_Context | None, Outcome | None]:
    """A customer whose processing is restricted (policy §14) is answered only when they
    exercise a right (:func:`_rights_answer`). Restriction stops the assistant, not the
    handling of their rights: the acknowledgement is recorded for the team with the
    request. Anything else waits for the team."""
    answer = _rights_answer(state, assistant)
    if answer is None:
        return None, "restricted"
    question = Question(text=(state.text or "").strip() or None)
    return _Context(
        message_id=message_id,
        organisation_id=state.organisation_id,
        conversation_id=state.conversation_id,
        customer_id=state.customer_id,
        channel=state.channel,
        adapter=adapter_for(state.channel),
        inbound=Inbound(
            organisation_id=state.organisation_id,
            conversation_id=state.conversation_id,
            customer_id=state.customer_id,
            external_id=state.external_id,
            address=_address(state),
        ),
        question=question,
        type=state.type,
        assistant=assistant,
        restricted=True,
        answer=answer,
    ), None


def _address(state: replies.MessageState) -> Address | None:
    """Where the answer goes: only a conversation on an account (a WhatsApp number) has
    an address."""
    if state.phone_number_id is None or state.access_token is None:
        return None
    return Address(
        state.phone_number_id, state.access_token, state.customer_wa_id, active=state.number_active
    )


# Assistants change rarely and are read for every reply: the view is kept per version
# (``updated_at``, which every change moves), so a change is seen by the next reply.
_ASSISTANT_VIEWS: dict[tuple[uuid.UUID, datetime], AssistantView] = {}
_ASSISTANT_VIEWS_KEPT = 256


async def _assistant_view(scope: TenantScope, state: replies.MessageState) -> AssistantView | None:
    if state.assistant_id is None or state.assistant_updated_at is None:  # gone, or off
        return None
    key = (state.assistant_id, state.assistant_updated_at)
    view = _ASSISTANT_VIEWS.get(key)
    if view is None:
        assistant = await scope.find(Assistant, state.assistant_id)
        if assistant is None or not assistant.active:
            return None
        view = AssistantView.of(assistant)
        if len(_ASSISTANT_VIEWS) >= _ASSISTANT_VIEWS_KEPT:
            _ASSISTANT_VIEWS.clear()
        _ASSISTANT_VIEWS[(assistant.id, assistant.updated_at)] = view
    return view


def _turns(history: list[list[str]]) -> list[Turn]:
    turns: list[Turn] = []
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


__all__: Sequence[str] = ("Answer", "Outcome", "Pipeline")
