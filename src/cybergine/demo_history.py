"""`cybergine demo`'s history: six weeks of the demo shop's past conversations, so its
Analytics page has something to show on first run. Deterministic (one seeded random
generator: the same days give the same history), written only into a demo organisation
with no conversation yet, and counted into the hourly aggregates in the same
transaction.

The customers are invented (names of no one, numbers in the +49 155 5 range no operator
hands out); every conversation is closed, as the demo's present starts with none open.
The assistant answers from the demo FAQ, citing its questions; some conversations ask
what the FAQ does not cover (``UNANSWERED``) and end with its fallback or a hand-off,
and a person of the team answers those in working hours (Monday to Friday, 9:00 to 18:00
Paris time, as the FAQ says). Each answer names the question it answers
(``reply_to_id``), so the questions are collected into the Top questions and Knowledge
gaps pages as a live conversation's are.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.analytics import rollups
from cybergine.assistants.models import Assistant
from cybergine.conversations import intents
from cybergine.conversations.csat_models import CsatSurvey
from cybergine.conversations.models import (
    Channel,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Message,
    MessageStatus,
    Sender,
)
from cybergine.conversations.service import next_message_id
from cybergine.db.ids import uuid7, uuid7_at
from cybergine.db.tenancy import TenantScope
from cybergine.demo import DEMO_ASSISTANT_NAME, DEMO_FAQ
from cybergine.knowledge.models import Item

HISTORY_DAYS = 42
ZONE = ZoneInfo("Europe/Paris")
SEED = 17
CUSTOMERS = 90
_NAMES = (
    "Alex", "Bea", "Chris", "Dani", "Eli", "Fran", "Gabi", "Hanna", "Ivo", "Jo",
    "Kim", "Lou", "Mika", "Nico", "Oli", "Pat", "Quinn", "Remy", "Sasha", "Toni",
)  # fmt: skip
# Conversations begun per local hour of the day (relative weights).
_HOURS = (0, 0, 0, 0, 0, 0, 1, 2, 4, 6, 8, 8, 7, 6, 5, 5, 5, 6, 7, 8, 8, 6, 3, 1)
# Outcomes and their shares: answered and closed; handed over on the customer's request
# after an answer; the fallback, then handed over; the fallback, and closed; a person
# of the team answering without a hand-off.
_OUTCOMES = (("answered", 64), ("asked", 13), ("fallback_handoff", 9), ("fallback", 8), ("team", 6))
# What customers ask that the demo FAQ does not answer: a few meanings, each in the
# words of several customers (the Knowledge gaps page groups them).
UNANSWERED = (
    "Do you ship to Canada?",
    "Can you deliver to Canada?",
    "How much is shipping to Canada?",
    "Do you sell gift cards?",
    "Can I buy a gift card?",
    "Are your products vegan?",
    "Is the leather real or vegan?",
)
NOTICE = "A person from our team will answer you here."
TEAM_REPLY = "Hi, this is Sam from the Demo Shop team. Let me look into that for you."


@dataclass
class _History:
    rng: random.Random
    organisation_id: uuid.UUID
    assistant: Assistant
    faq: list[tuple[str, str, str | None]]
    customers: list[Customer]
    conversations: list[Conversation] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    # The unanswered questions are drawn by a generator of their own, so the
    # conversations' shapes stay those the main generator makes.
    unanswered: random.Random = field(default_factory=lambda: random.Random(SEED + 31))  # noqa: S311
    # Each conversation's last customer message: what an answer replies to.
    asked: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)

    def say(self, conversation: Conversation, sender: Sender, at: datetime, **fields: Any) -> None:
        inbound = sender is Sender.CUSTOMER
        # Of its own time, and above the conversation's earlier ones, as a live message's.
        message_id = next_message_id(conversation, at=at)
        if inbound:
            self.asked[conversation.id] = message_id
        elif sender is Sender.ASSISTANT:
            fields["reply_to_id"] = self.asked.get(conversation.id)
        self.messages.append(
            Message(
                id=message_id,
                organisation_id=self.organisation_id,
                conversation_id=conversation.id,
                direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
                sender=sender,
                type="text",
                status=MessageStatus.RECEIVED if inbound else MessageStatus.READ,
                send_attempts=0,
                created_at=at,
                **fields,
            )
        )
        conversation.last_message_at = at
        if inbound:
            conversation.last_inbound_at = at

    def answer(self, conversation: Conversation, at: datetime, index: int) -> None:
        _, answer, item_id = self.faq[index]
        self.say(
            conversation,
            Sender.ASSISTANT,
            at,
            text=answer,
            grounded=True,
            sources=[{"item_id": item_id, "cited": True}] if item_id else None,
            llm_provider=self.assistant.llm_provider.value,
            llm_model=self.assistant.llm_model,
        )

    def fallback(self, conversation: Conversation, at: datetime) -> None:
        self.say(
            conversation,
            Sender.ASSISTANT,
            at,
            text=self.assistant.fallback_message,
            grounded=False,
            llm_provider=self.assistant.llm_provider.value,
            llm_model=self.assistant.llm_model,
        )


def _working_time(moment: datetime, rng: random.Random) -> datetime:
    """When a person of the team answers a message written at ``moment``: a few minutes
    later in working hours, else the next working morning."""
    local = moment.astimezone(ZONE)
    if local.weekday() < 5 and time(9) <= local.time() < time(17, 30):
        return moment + timedelta(minutes=rng.randint(2, 40))
    day = local.date() + timedelta(days=1 if local.time() >= time(9) else 0)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    opening = datetime.combine(day, time(9), ZONE) + timedelta(minutes=rng.randint(3, 70))
    return opening.astimezone(UTC)


def _conversation(history: _History, start: datetime) -> None:
    rng = history.rng
    customer = rng.choice(history.customers)
    conversation = Conversation(
        id=uuid7_at(start),
        organisation_id=history.organisation_id,
        channel=customer.channel,
        customer_id=customer.id,
        assistant_id=history.assistant.id,
        state=ConversationState.CLOSED,
        human_review_requested=False,
        unread_count=0,
        created_at=start,
    )
    history.conversations.append(conversation)
    outcome = rng.choices([o for o, _ in _OUTCOMES], [w for _, w in _OUTCOMES])[0]
    index = rng.randrange(len(history.faq))
    at = start
    question = history.faq[index][0]
    if outcome in ("fallback", "fallback_handoff"):
        question = history.unanswered.choice(UNANSWERED)
    history.say(conversation, Sender.CUSTOMER, at, text=question)
    at += timedelta(seconds=rng.randint(2, 25))
    if outcome in ("fallback", "fallback_handoff"):
        history.fallback(conversation, at)
    elif outcome != "team":
        history.answer(conversation, at, index)
        if rng.random() < 0.35:  # a follow-up question, answered too
            follow = rng.randrange(len(history.faq))
            at += timedelta(minutes=rng.randint(1, 6))
            history.say(conversation, Sender.CUSTOMER, at, text=history.faq[follow][0])
            at += timedelta(seconds=rng.randint(2, 25))
            history.answer(conversation, at, follow)
    if outcome in ("asked", "fallback_handoff"):
        at += timedelta(minutes=rng.randint(1, 4))
        if outcome == "asked":
            history.say(conversation, Sender.CUSTOMER, at, text="Can I talk to a person?")
        conversation.handoff_at = at
        conversation.handoff_reason = intents.REASON_CUSTOMER_REQUEST
        history.say(conversation, Sender.SYSTEM, at, text=NOTICE)
    if outcome in ("asked", "fallback_handoff", "team"):
        at = _working_time(at, rng)
        history.say(conversation, Sender.AGENT, at, text=TEAM_REPLY)
    conversation.closed_at = at + timedelta(minutes=rng.randint(5, 60))


def _surveys(organisation_id: uuid.UUID, conversations: list[Conversation]) -> list[CsatSurvey]:
    """Each closed conversation's satisfaction survey; about two in five answered, better
    when the assistant resolved it alone. A generator of its own, so the conversations
    stay the same with or without it."""
    rng = random.Random(SEED + 29)  # noqa: S311 - invented data, the same every time
    surveys = []
    for conversation in conversations:
        asked = conversation.closed_at or conversation.created_at
        rating = None
        if rng.random() < 0.42:
            weights = (1, 1, 2, 3, 3) if conversation.handoff_at else (1, 1, 2, 6, 10)
            rating = rng.choices(range(1, 6), weights)[0]
        surveys.append(
            CsatSurvey(
                id=uuid7_at(asked),
                organisation_id=organisation_id,
                conversation_id=conversation.id,
                customer_id=conversation.customer_id,
                created_at=asked,
                rating=rating,
                rated_at=asked + timedelta(minutes=rng.randint(1, 30)) if rating else None,
            )
        )
    return surveys


async def seed_history(session: AsyncSession, organisation_id: uuid.UUID, today: date) -> int:
    """The demo's past conversations with its assistant, up to the day before ``today``
    (Paris time), once: nothing when the organisation has a conversation already or no
    demo assistant. Answers how many it wrote."""
    scope = TenantScope(session, organisation_id)
    assistant = (
        await session.execute(scope.select(Assistant).where(Assistant.name == DEMO_ASSISTANT_NAME))
    ).scalar_one_or_none()
    if assistant is None or await scope.count(scope.select(Conversation)):
        return 0
    rng = random.Random(SEED)  # noqa: S311 - invented data, the same every time on purpose
    items = {
        item.question: str(item.id)
        for item in (await session.execute(scope.select(Item))).scalars()
        if item.question
    }
    customers = []
    for number in range(CUSTOMERS):
        whatsapp = number % 10 < 7
        customers.append(
            Customer(
                id=uuid7(),
                organisation_id=organisation_id,
                channel=Channel.WHATSAPP if whatsapp else Channel.WEBCHAT,
                external_id=f"491555{number:06d}" if whatsapp else f"{rng.getrandbits(128):032x}",
                phone_number=f"+491555{number:06d}" if whatsapp else None,
                display_name=f"{_NAMES[number % len(_NAMES)]} {chr(65 + number % 26)}.",
            )
        )
    history = _History(
        rng,
        organisation_id,
        assistant,
        [(q, a, items.get(q)) for q, a in DEMO_FAQ],
        customers,
    )
    first = today - timedelta(days=HISTORY_DAYS)
    for offset in range(HISTORY_DAYS):
        day = first + timedelta(days=offset)
        volume = (6 if day.weekday() >= 5 else 10) + offset // 6 + rng.randint(-2, 3)
        for _ in range(volume):
            hour = rng.choices(range(24), _HOURS)[0]
            local = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), ZONE)
            _conversation(history, local.astimezone(UTC))
    session.add_all(customers)
    await session.flush()
    session.add_all(history.conversations)
    await session.flush()
    session.add_all(history.messages)
    await session.flush()
    session.add_all(_surveys(organisation_id, history.conversations))
    await session.flush()
    # Every conversation is closed: the idle time measures none of them.
    await rollups.refresh(session, organisation_id, rollups.measure_now(24))
    return len(history.conversations)
