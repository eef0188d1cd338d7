"""Web chat rules: which assistant a widget key opens, which origins may embed it, what a
visitor sees of their conversation, and how their messages enter the reply pipeline.

A visitor reaches only their own customer row's conversations (the customer id comes
from their signed token), and sees only what was said to them: internal notes and
other customers never appear.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import any_, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.grace import refuse_channel_if_closing
from cybergine.assistants.models import Assistant
from cybergine.channels.webchat import visitors
from cybergine.channels.webchat.adapter import buttons_of
from cybergine.channels.webchat.visitors import Visitor
from cybergine.conversations.answering import HANDOFF_BUTTON_ID, HANDOFF_BUTTON_TITLE
from cybergine.conversations.inbound import (
    ChannelAccount,
    CustomerIdentity,
    InboundContent,
    record_inbound,
)
from cybergine.conversations.models import (
    Channel,
    Conversation,
    ConversationState,
    Direction,
    Message,
    Sender,
)
from cybergine.conversations.product_cards import cards_of
from cybergine.conversations.service import message_text
from cybergine.db.tenancy import TenantScope
from cybergine.errors import Forbidden, NotFound, Unauthorized
from cybergine.privacy.card_numbers import mask_card_numbers
from cybergine.privacy.pseudonyms import erased_on_channel

MAX_TEXT = 2000
HISTORY_LIMIT = 200
DEFAULT_COLOUR = "#0b5fff"
HANDOFF_REQUEST_TEXT = "I'd like to talk to a person."


def origin_allowed(assistant: Assistant, origin: str | None, own_origin: str | None) -> bool:
    """The page's origin is one the organisation listed, or the platform's own (the
    demo storefront)."""
    if origin is None:
        return False
    if own_origin is not None and origin == own_origin:
        return True
    # Stored normalised (``assistants.service.clean_origins``): compared as they are.
    return origin in assistant.allowed_origins


async def origin_listed(session: AsyncSession, origin: str) -> bool:
    """Whether any active assistant lists ``origin``: what a request that names no
    assistant yet (a CORS preflight, a session that has ended) can be told."""
    listed = await session.scalar(
        select(Assistant.id)
        .where(Assistant.active, literal(origin) == any_(Assistant.allowed_origins))
        .limit(1)
    )
    return listed is not None


async def assistant_by_key(session: AsyncSession, widget_key: str) -> Assistant:
    assistant = await session.scalar(
        select(Assistant).where(Assistant.widget_key == widget_key[:40])
    )
    if assistant is None or not assistant.active:
        raise NotFound("No such widget.")
    await refuse_channel_if_closing(session, assistant.organisation_id)
    return assistant


async def authenticate(session: AsyncSession, token: str | None) -> tuple[Assistant, Visitor]:
    parsed = visitors.parse(token)
    if parsed is None:
        raise Unauthorized("Start a chat session first.")
    visitor, signature = parsed
    assistant = await session.get(Assistant, visitor.assistant_id)
    if (
        assistant is None
        or not assistant.active
        or not visitors.verify(visitor, signature, assistant.widget_key)
        or await visitor_erased(session, assistant, visitor)
    ):
        raise Unauthorized("This chat session has ended; start a new one.")
    await refuse_channel_if_closing(session, assistant.organisation_id)
    return assistant, visitor


async def visitor_erased(session: AsyncSession, assistant: Assistant, visitor: Visitor) -> bool:
    """The visitor's data was erased (policy §14): their token names nobody any more, and
    the widget starts a fresh visitor, with a fresh conversation and none of the old."""
    return await erased_on_channel(
        session, assistant.organisation_id, Channel.WEBCHAT, visitor.visitor_id
    )


def config(assistant: Assistant) -> dict[str, Any]:
    widget = assistant.widget or {}
    language = widget.get("language") or (assistant.languages or ["en"])[0]
    return {
        "name": assistant.name,
        "title": widget.get("title") or assistant.name,
        "colour": widget.get("colour") or DEFAULT_COLOUR,
        "position": widget.get("position") or "right",
        "greeting": assistant.greeting,
        "avatar_url": widget.get("avatar_url"),
        "language": language,
        "ai_disclosure": assistant.ai_disclosure,
        "ask_consent": bool(widget.get("ask_consent", False)),
        "privacy_notice_url": widget.get("privacy_notice_url"),
        "handoff_label": HANDOFF_BUTTON_TITLE,
    }


@dataclass(frozen=True)
class Snapshot:
    conversation: Conversation | None
    messages: list[Message]


async def snapshot(
    session: AsyncSession,
    assistant: Assistant,
    visitor: Visitor,
    *,
    after: uuid.UUID | None = None,
) -> Snapshot:
    """The visitor's latest conversation and their messages (after ``after``, or the
    last ``HISTORY_LIMIT``), oldest first."""
    scope = TenantScope(session, assistant.organisation_id)
    # The visitor's conversations first (indexed by customer), then their messages by
    # (conversation, id): a plan that stays cheap before the tables are analysed.
    conversations = list(
        (
            await session.execute(
                scope.select(Conversation)
                .where(Conversation.customer_id == visitor.customer_id)
                .order_by(Conversation.id.desc())
            )
        ).scalars()
    )
    latest = conversations[0] if conversations else None
    if not conversations:
        return Snapshot(None, [])
    statement = scope.select(Message).where(
        Message.conversation_id.in_([c.id for c in conversations]),
        Message.direction != Direction.INTERNAL,
    )
    if after is not None:
        statement = statement.where(Message.id > after).order_by(Message.id).limit(HISTORY_LIMIT)
        messages = list((await session.execute(statement)).scalars())
    else:
        statement = statement.order_by(Message.id.desc()).limit(HISTORY_LIMIT)
        messages = list(reversed((await session.execute(statement)).scalars().all()))
    return Snapshot(latest, messages)


def message_view(message: Message) -> dict[str, Any]:
    """A message as the widget shows it: nothing the visitor was not told."""
    sources = [
        {
            "title": str(s.get("title") or ""),
            "url": s.get("url") if _web_url(s.get("url")) else None,
        }
        for s in (message.sources or [])
        if isinstance(s, dict) and s.get("cited", True) and s.get("title")
    ]
    view: dict[str, Any] = {
        "id": str(message.id),
        "sender": message.sender.value,
        "text": message.text or "",
        "created_at": message.created_at.isoformat(),
        "sources": sources,
        "buttons": buttons_of(message.payload),
        "products": [card.view() for card in cards_of(message.payload)],
    }
    survey = (message.payload or {}).get("csat")
    if isinstance(survey, dict):
        # A satisfaction survey: the widget shows stars (POST /widget/v1/rating), not rows.
        view["survey"] = {"id": survey.get("survey_id"), "rating": survey.get("rating")}
        view["buttons"] = []
    external = message.external_id or ""
    if message.sender == Sender.CUSTOMER and external.startswith("web:"):
        # The widget matches its pending bubble to the stored message by this.
        view["client_id"] = external.split(":", 2)[2]
    return view


def _web_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


async def post_message(
    session: AsyncSession,
    assistant: Assistant,
    visitor: Visitor,
    *,
    text: str,
    client_id: str,
    button_id: str | None = None,
    page_origin: str | None = None,
) -> Message:
    """The visitor writes; stored with its reply job, once per ``client_id``."""
    text = message_text(text, limit=MAX_TEXT, what="A message", empty="Write a message first.")
    text = mask_card_numbers(text)  # never stored whole (policy §12)
    external_id = f"web:{visitor.visitor_id}:{client_id}"
    payload: dict[str, Any] | None = {"choice_id": button_id} if button_id else None
    account = ChannelAccount(
        organisation_id=assistant.organisation_id,
        channel=Channel.WEBCHAT,
        assistant_id=assistant.id,
        # Opting out by keyword is a WhatsApp rule; a web visitor simply stops writing.
        opt_out_words=(),
        opt_in_words=(),
    )
    await record_inbound(
        session,
        account,
        CustomerIdentity(external_id=visitor.visitor_id, id=visitor.customer_id),
        InboundContent(
            external_id=external_id,
            type="interactive" if button_id else "text",
            text=text,
            payload=payload,
            sent_at=datetime.now(UTC),
        ),
    )
    message = await session.scalar(
        select(Message).where(
            Message.organisation_id == assistant.organisation_id,
            Message.external_id == external_id,
        )
    )
    if message is None:  # pragma: no cover - record_inbound always leaves one
        raise Forbidden("The message could not be stored.")
    return message


async def request_person(session: AsyncSession, assistant: Assistant, visitor: Visitor) -> Message:
    """The visitor asks for a person: the same path as tapping the button on WhatsApp."""
    return await post_message(
        session,
        assistant,
        visitor,
        text=HANDOFF_REQUEST_TEXT,
        client_id=f"handoff-{uuid.uuid4()}",
        button_id=HANDOFF_BUTTON_ID,
    )


def state_of(conversation: Conversation | None) -> dict[str, str] | None:
    if conversation is None:
        return None
    return {"id": str(conversation.id), "state": conversation.state.value}


__all__ = [
    "MAX_TEXT",
    "ConversationState",
    "assistant_by_key",
    "authenticate",
    "config",
    "message_view",
    "origin_allowed",
    "post_message",
    "request_person",
    "snapshot",
    "state_of",
    "visitor_erased",
]
