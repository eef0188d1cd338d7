"""The reply pipeline: from a customer's message to the assistant's answer on its way.

1. Read (one statement, see ``conversations.replies``): whether the message is still to be
   answered, its conversation, the assistant, the recent turns; then the knowledge base's
   best passages for the question. On WhatsApp the customer's message is marked read, with
   a typing indicator, while the answer is made.
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

from cybergine.assistants.models import Assistant
from cybergine.channels.whatsapp import delivery
from cybergine.channels.whatsapp.delivery import Claim
from cybergine.channels.whatsapp.graph import GraphError
from cybergine.channels.whatsapp.tasks import SEND_RETRY
from cybergine.conversations import replies
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
    retrieve,
)
from cybergine.conversations.models import (
    Channel,
    Conversation,
    Sender,
)
from cybergine.conversations.service import defer_send, hand_off
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.embeddings import EmbeddingProvider
from cybergine.knowledge.search import Hit
from cybergine.llm.providers import LLMProvider
from cybergine.queue import RetryLater
from cybergine.realtime.events import Event, publish
from cybergine.settings import Settings

log = structlog.get_logger(__name__)

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
class _Context:
    message_id: uuid.UUID
    organisation_id: uuid.UUID
    conversation_id: uuid.UUID
    customer_id: uuid.UUID
    channel: Channel
    question: Question
    type: str
    assistant: AssistantView
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
        try:
            answer = await self.responder.decide(
                context.assistant,
                context.question,
                context.hits,
                search=functools.partial(self._search_again, context),
                log_context={"conversation_id": str(context.conversation_id)},
            )
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
                question=Question(
                    text=(state.text or "").strip() or None,
                    choice_id=choice if isinstance(choice, str) else None,
                    history=_turns(state.history),
                ),
                type=state.type,
                assistant=assistant,
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
            if needs_search(assistant, context.question):
                assert context.question.text is not None
                context.hits = await retrieve(
                    scope, assistant, context.question.text, self.embeddings
                )
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

    # --- 3. write ------------------------------------------------------------------

    async def _write(self, context: _Context, answer: Answer) -> tuple[Outcome, Claim | None]:
        """The answer, in one statement that checks again that it is still wanted (see
        ``conversations.replies``); a handoff goes in the same transaction."""
        payload: dict[str, Any] | None = None
        if answer.offer_human:
            payload = {"buttons": [{"id": HANDOFF_BUTTON_ID, "title": HANDOFF_BUTTON_TITLE}]}
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
        return answer.outcome, claim

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
_ASSISTANT_VIEWS: dict[tuple[uuid.UUID, datetime], AssistantView] = {}
_ASSISTANT_VIEWS_KEPT = 256


async def _assistant_view(scope: TenantScope, state: Row[Any]) -> AssistantView | None:
    if state.assistant_updated_at is None:  # gone, or switched off
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
