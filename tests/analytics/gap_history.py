"""A hand-built history of questions: two meanings the assistant could not answer
(shipping to Canada, gift cards), one it answered every time (returns), and noise around
them that is no question.

In the period (Monday of last week to today, UTC), organisation "Gaps":

- shipping to Canada, 5 gap questions in 4 conversations: 3 got the fallback (one of
  them from assistant B on web chat), 1 was handed to a person by the model, and one
  conversation asked twice (fallback both times); the web chat conversation had asked
  it once before and got a grounded answer (``SHIPPING_ANSWERED``): 6 questions in all;
- returns, 4 questions in 3 conversations, each with a grounded answer (one conversation
  asked twice), and a product the customer picked from a list (a tap, no question);
- gift cards, 3 questions, each the fallback of its own conversation (the last customer
  then accepts the offer of a person: "Yes please", handed off by the model, no gap);
- noise: two questions that got a grounded answer, each its own meaning
  (``NOISE[:2]``: top questions asked once); a customer who asked for a person (the
  platform's notice, no model); a greeting (``grounded`` null); a photo that got the
  fallback (no text); a question whose fallback came with no ``reply_to_id``.

Outside the period: a gift card question three days before Monday (collected, not
counted). Another organisation: a shipping question that got the fallback.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.analytics import gaps
from cybergine.assistants.models import Assistant
from cybergine.conversations.models import Channel, Conversation, Direction, Message, Sender
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.embeddings import LocalMiniLM
from tests.analytics.known import monday_of_last_week
from tests.support.conversations import make_conversation, make_message
from tests.support.factories import make_organisation

SHIPPING = (
    "Do you ship to Canada?",
    "Can you deliver to Canada?",
    "How much is shipping to Canada?",
    "do u ship to canada",
    "Is delivery to Toronto possible?",
)
SHIPPING_ANSWERED = "Can you ship to Canada?"
GIFT_CARDS = ("Do you sell gift cards?", "Can I buy a gift voucher?", "Are gift cards available?")
RETURNS = (
    "How do I return an item?",
    "Can I return something I bought?",
    "Can I return an item?",
    "how do i return something",
)
NOISE = (
    "What are your opening hours?",
    "Where is my order 1234?",
    "Can I pay with PayPal?",
)


@dataclass
class GapHistory:
    organisation_id: uuid.UUID
    assistant_a: uuid.UUID
    assistant_b: uuid.UUID
    first: datetime
    shipping_conversations: set[uuid.UUID] = field(default_factory=set)
    gift_conversations: set[uuid.UUID] = field(default_factory=set)
    return_conversations: set[uuid.UUID] = field(default_factory=set)
    questions: dict[str, uuid.UUID] = field(default_factory=dict)


async def _assistant(session: AsyncSession, organisation_id: uuid.UUID, name: str) -> Assistant:
    assistant = TenantScope(session, organisation_id).add(Assistant(name=name))
    await session.flush()
    return assistant


async def ask(
    session: AsyncSession,
    conversation: Conversation,
    at: datetime,
    question: str | None,
    *,
    answer: str = "fallback",
    choice_id: str | None = None,
) -> Message:
    """The customer's ``question`` at ``at`` (a tap on a button or list row with
    ``choice_id``) and its reply 10 s later: ``fallback`` (not grounded), ``grounded``,
    ``greeting`` (grounded null), ``model_handoff`` (the platform's notice written with
    the model), ``customer_handoff`` (the notice alone), ``unlinked`` (a fallback that
    names no question)."""
    asked = await make_message(
        session,
        conversation,
        direction=Direction.INBOUND,
        text=question,
        type="text" if question is not None else "image",
        created_at=at,
        payload=None if choice_id is None else {"choice_id": choice_id},
    )
    reply: dict[str, object] = {
        "direction": Direction.OUTBOUND,
        "created_at": at + timedelta(seconds=10),
        "reply_to_id": asked.id,
        "text": "Sorry, I do not know.",
    }
    match answer:
        case "fallback":
            reply |= {"sender": Sender.ASSISTANT, "grounded": False}
        case "grounded":
            reply |= {"sender": Sender.ASSISTANT, "grounded": True}
        case "greeting":
            reply |= {"sender": Sender.ASSISTANT, "grounded": None}
        case "model_handoff":
            reply |= {"sender": Sender.SYSTEM, "llm_provider": "openai", "llm_model": "gpt-x"}
        case "customer_handoff":
            reply |= {"sender": Sender.SYSTEM}
        case "unlinked":
            reply |= {"sender": Sender.ASSISTANT, "grounded": False, "reply_to_id": None}
    await make_message(session, conversation, **reply)  # type: ignore[arg-type]
    conversation.last_message_at = at + timedelta(seconds=10)
    return asked


async def seed(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    other_organisation_id: uuid.UUID,
    now: datetime,
) -> GapHistory:
    monday = monday_of_last_week(now.date())
    a = await _assistant(session, organisation_id, "A")
    b = await _assistant(session, organisation_id, "B")
    history = GapHistory(organisation_id, a.id, b.id, monday)

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return monday + timedelta(days=day, hours=hour, minutes=minute)

    async def conversation(**fields: object) -> Conversation:
        return await make_conversation(session, organisation_id, **fields)  # type: ignore[arg-type]

    # Shipping to Canada.
    c = await conversation(assistant_id=a.id, created_at=at(0, 9))
    history.questions[SHIPPING[0]] = (await ask(session, c, at(0, 9), SHIPPING[0])).id
    history.questions[SHIPPING[3]] = (await ask(session, c, at(0, 9, 5), SHIPPING[3])).id
    history.shipping_conversations.add(c.id)
    c = await conversation(assistant_id=b.id, channel=Channel.WEBCHAT, created_at=at(1, 9))
    history.questions[SHIPPING_ANSWERED] = (
        await ask(session, c, at(1, 9, 55), SHIPPING_ANSWERED, answer="grounded")
    ).id
    history.questions[SHIPPING[1]] = (await ask(session, c, at(1, 10), SHIPPING[1])).id
    history.shipping_conversations.add(c.id)
    c = await conversation(assistant_id=a.id, created_at=at(2, 11))
    await ask(session, c, at(2, 11), NOISE[0], answer="grounded")
    history.questions[SHIPPING[2]] = (
        await ask(session, c, at(2, 11, 3), SHIPPING[2], answer="model_handoff")
    ).id
    history.shipping_conversations.add(c.id)
    c = await conversation(assistant_id=a.id, created_at=at(3, 12))
    history.questions[SHIPPING[4]] = (await ask(session, c, at(3, 12), SHIPPING[4])).id
    history.shipping_conversations.add(c.id)

    # Gift cards; the last customer accepts the offer of a person, which the model hands off.
    for day, question in enumerate(GIFT_CARDS):
        c = await conversation(assistant_id=a.id, created_at=at(day, 15))
        history.questions[question] = (await ask(session, c, at(day, 15), question)).id
        history.gift_conversations.add(c.id)
    await ask(session, c, at(2, 15, 1), "Yes please", answer="model_handoff")

    # Returns, answered every time; a product picked from a list is no question.
    c = await conversation(assistant_id=a.id, created_at=at(0, 11))
    await ask(session, c, at(0, 11), RETURNS[0], answer="grounded")
    await ask(session, c, at(0, 11, 2), RETURNS[1], answer="grounded")
    await ask(session, c, at(0, 11, 4), "Blue T-shirt", answer="grounded", choice_id="product:1")
    history.return_conversations.add(c.id)
    for day, question in enumerate(RETURNS[2:], start=2):
        c = await conversation(assistant_id=a.id, created_at=at(day, 16))
        await ask(session, c, at(day, 16), question, answer="grounded")
        history.return_conversations.add(c.id)

    # Noise.
    c = await conversation(assistant_id=a.id, created_at=at(1, 8))
    await ask(session, c, at(1, 8), NOISE[1], answer="grounded")
    await ask(session, c, at(1, 8, 1), "I want to talk to a person", answer="customer_handoff")
    c = await conversation(assistant_id=a.id, created_at=at(1, 9))
    await ask(session, c, at(1, 9), "Hello!", answer="greeting")
    await ask(session, c, at(1, 9, 1), None)  # a photo: the fallback, no text
    await ask(session, c, at(1, 9, 2), NOISE[2], answer="unlinked")

    # Before the period: collected, not counted in it.
    c = await conversation(assistant_id=a.id, created_at=monday - timedelta(days=3))
    await ask(session, c, monday - timedelta(days=3), "Do you have gift cards?")

    # Another organisation's shipping question.
    other = await make_conversation(session, other_organisation_id, created_at=at(0, 9))
    await ask(session, other, at(0, 9), "Do you ship to Canada?")
    return history


async def collect(database: Database, organisation_id: uuid.UUID, minilm: LocalMiniLM) -> int:
    """The collection job's work for one organisation, now."""
    async with database.transaction() as session:
        return (await gaps.collect(session, organisation_id, minilm, datetime.now(UTC))).added


async def seeded(database: Database, minilm: LocalMiniLM) -> tuple[GapHistory, uuid.UUID]:
    """Organisation "Gaps" with the history above, collected, and "Other" with its one
    question, collected too."""
    organisation, _ = await make_organisation(database, name="Gaps")
    other, _ = await make_organisation(database, name="Other")
    async with database.transaction() as session:
        history = await seed(session, organisation.id, other.id, datetime.now(UTC))
    await collect(database, organisation.id, minilm)
    await collect(database, other.id, minilm)
    return history, other.id
