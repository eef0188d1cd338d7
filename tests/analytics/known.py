"""A hand-built history whose every analytics figure is known: six conversations in the
period (Monday of last week to today, UTC), one in the period before.

Assistant A has business hours 12:00-20:00 Monday to Friday in Asia/Dubai (UTC+4, no
daylight saving time): 08:00-16:00 UTC. Assistant B has none. Times below are UTC; the
idle time is 24 hours.

C1  A, WhatsApp, Monday 08:00: customer 08:00:00, assistant 08:00:30 (grounded, cites
    K1, shows K2 uncited; openai/gpt-x 100+20 tokens), customer 08:10:00, assistant
    08:10:20 (fallback; 50+10 tokens), closed 09:00. Resolved by the assistant.
C2  A, web chat, Monday 07:30 (before hours): customer 07:30:00, assistant 07:30:10
    (grounded, cites K1, no model), hand-off 07:40 (customer_request) with the platform's
    notice, agent 08:20. Idle since 08:20: resolved, handed to a person.
C3  B, WhatsApp, an hour ago: customer, assistant 60 s later (grounded; anthropic/claude
    30+5 tokens). Still open.
C4  A, WhatsApp, Tuesday 10:00: customer 10:00, agent 10:05 (took over without a
    hand-off), closed 11:00. Handed to a person.
C5  A, WhatsApp, Monday 12:00, C1's customer again: one customer message, no answer.
    Idle: resolved, by nobody.
C6  A, web chat, Monday 08:30: customer 08:30, hand-off 08:31 with a sentence as its
    reason and the platform's notice. Idle: resolved, handed to a person.
C7  A, WhatsApp, three days before Monday 10:00: customer, assistant 45 s later
    (grounded), closed 10:30. The previous period's one conversation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.assistants.models import Assistant
from cybergine.conversations.models import (
    Channel,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Sender,
)
from cybergine.db.tenancy import TenantScope
from tests.support.conversations import make_conversation, make_message

BUSINESS_HOURS = {
    "timezone": "Asia/Dubai",
    "days": {day: [["12:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
}
IDLE_HOURS = 24.0
K1 = str(uuid.UUID(int=1))
K2 = str(uuid.UUID(int=2))


def monday_of_last_week(today: date) -> datetime:
    monday = today - timedelta(days=today.weekday() + 7)
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


@dataclass
class Known:
    organisation_id: uuid.UUID
    assistant_a: uuid.UUID
    assistant_b: uuid.UUID
    first: date
    last: date
    conversations: dict[str, uuid.UUID] = field(default_factory=dict)


async def _assistant(session: AsyncSession, organisation_id: uuid.UUID, **fields: Any) -> Assistant:
    assistant = TenantScope(session, organisation_id).add(Assistant(**fields))
    await session.flush()
    return assistant


async def _say(
    session: AsyncSession,
    conversation: Conversation,
    sender: Sender,
    at: datetime,
    **fields: Any,
) -> None:
    """A message, moving its conversation as the writers do (``last_message_at``)."""
    direction = Direction.INBOUND if sender is Sender.CUSTOMER else Direction.OUTBOUND
    await make_message(
        session, conversation, direction=direction, sender=sender, created_at=at, **fields
    )
    conversation.last_message_at = at


async def seed(session: AsyncSession, organisation_id: uuid.UUID, now: datetime) -> Known:
    monday = monday_of_last_week(now.date())
    a = await _assistant(session, organisation_id, name="A", business_hours=BUSINESS_HOURS)
    b = await _assistant(session, organisation_id, name="B")
    known = Known(organisation_id, a.id, b.id, monday.date(), now.date())

    def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
        return monday + timedelta(days=day, hours=hour, minutes=minute, seconds=second)

    async def conversation(name: str, start: datetime, **fields: Any) -> Conversation:
        created = await make_conversation(session, organisation_id, created_at=start, **fields)
        known.conversations[name] = created.id
        return created

    c1 = await conversation("C1", at(0, 8), assistant_id=a.id)
    await _say(session, c1, Sender.CUSTOMER, at(0, 8))
    await _say(
        session,
        c1,
        Sender.ASSISTANT,
        at(0, 8, 0, 30),
        grounded=True,
        sources=[{"item_id": K1, "cited": True}, {"item_id": K2, "cited": False}],
        llm_provider="openai",
        llm_model="gpt-x",
        prompt_tokens=100,
        completion_tokens=20,
    )
    await _say(session, c1, Sender.CUSTOMER, at(0, 8, 10))
    await _say(
        session,
        c1,
        Sender.ASSISTANT,
        at(0, 8, 10, 20),
        grounded=False,
        llm_provider="openai",
        llm_model="gpt-x",
        prompt_tokens=50,
        completion_tokens=10,
    )
    c1.state, c1.closed_at = ConversationState.CLOSED, at(0, 9)

    c2 = await conversation("C2", at(0, 7, 30), assistant_id=a.id, channel=Channel.WEBCHAT)
    await _say(session, c2, Sender.CUSTOMER, at(0, 7, 30))
    await _say(
        session,
        c2,
        Sender.ASSISTANT,
        at(0, 7, 30, 10),
        grounded=True,
        sources=[{"item_id": K1}],
        llm_provider="extractive",
    )
    await _say(session, c2, Sender.SYSTEM, at(0, 7, 40))
    c2.handoff_at, c2.handoff_reason = at(0, 7, 40), "customer_request"
    await _say(session, c2, Sender.AGENT, at(0, 8, 20))
    c2.state = ConversationState.HUMAN

    recent = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    c3 = await conversation("C3", recent, assistant_id=b.id)
    await _say(session, c3, Sender.CUSTOMER, recent)
    await _say(
        session,
        c3,
        Sender.ASSISTANT,
        recent + timedelta(seconds=60),
        grounded=True,
        llm_provider="anthropic",
        llm_model="claude",
        prompt_tokens=30,
        completion_tokens=5,
    )

    c4 = await conversation("C4", at(1, 10), assistant_id=a.id)
    await _say(session, c4, Sender.CUSTOMER, at(1, 10))
    await _say(session, c4, Sender.AGENT, at(1, 10, 5))
    c4.state, c4.closed_at = ConversationState.CLOSED, at(1, 11)

    customer = await session.get_one(Customer, c1.customer_id)
    c5 = await conversation("C5", at(0, 12), assistant_id=a.id, customer=customer)
    await _say(session, c5, Sender.CUSTOMER, at(0, 12))

    c6 = await conversation("C6", at(0, 8, 30), assistant_id=a.id, channel=Channel.WEBCHAT)
    await _say(session, c6, Sender.CUSTOMER, at(0, 8, 30))
    await _say(session, c6, Sender.SYSTEM, at(0, 8, 31))
    c6.handoff_at = at(0, 8, 31)
    c6.handoff_reason = "The customer chose to talk to a person."
    c6.state = ConversationState.WAITING_FOR_HUMAN

    c7 = await conversation("C7", at(-3, 10), assistant_id=a.id)
    await _say(session, c7, Sender.CUSTOMER, at(-3, 10))
    await _say(session, c7, Sender.ASSISTANT, at(-3, 10, 0, 45), grounded=True)
    c7.state, c7.closed_at = ConversationState.CLOSED, at(-3, 10, 30)
    await session.flush()
    return known


# Every figure of the period, as the module's docstring works them out.
EXPECTED = {
    "conversations": 6,
    "unique_customers": 5,
    "answered_by_assistant": 3,
    "resolved_by_assistant": 1,
    "handed_to_person": 3,
    "resolved": 5,
    "with_fallback": 1,
    "with_grounded_answer": 3,  # C1, C2, C3
    "deflected": 2,  # C1, C3: answered, never handed to a person
    "containment_rate": 1 / 6,
    "involvement_rate": 3 / 6,
    "assistant_resolution_rate": 1 / 3,
    "handoff_rate": 3 / 6,
    "answer_rate": 3 / 3,
    "deflection_rate": 2 / 3,
    "messages_in": 7,
    "messages_out": 8,
    "assistant_answers": 4,
    "grounded_answers": 3,
    "fallbacks": 1,
    "grounded_rate": 3 / 4,
    "prompt_tokens": 180,
    "completion_tokens": 35,
    "first_response_seconds": (30 + 10 + 60) / 3,
    "first_response_business_seconds": (30 + 0) / 2,
    "agent_first_response_seconds": (3000 + 300) / 2,
    "agent_first_response_business_seconds": (1200 + 300) / 2,
    "human_first_response_seconds": 2400,
    "human_first_response_business_seconds": 1200,
    "resolution_seconds": (3600 + 3000 + 3600 + 0 + 60) / 5,
    "resolution_business_seconds": (3600 + 1200 + 3600 + 0 + 60) / 5,
}
EXPECTED_PREVIOUS = {
    "conversations": 1,
    "resolved_by_assistant": 1,
    "containment_rate": 1.0,
    "first_response_seconds": 45,
    "unique_customers": 1,
}
EXPECTED_STATES = {"bot": 2, "waiting_for_human": 1, "human": 1, "closed": 2}
EXPECTED_CHANNELS = {"whatsapp": 4, "webchat": 2}
EXPECTED_REASONS = {"customer_request": 1, "other": 1}
EXPECTED_SOURCES = {K1: 2}
EXPECTED_MODELS = {
    ("openai", "gpt-x"): (2, 150, 30),
    ("anthropic", "claude"): (1, 30, 5),
    ("extractive", None): (1, 0, 0),
}
# Which conversations each drill-down lists.
EXPECTED_DRILLDOWN = {
    "conversations": {"C1", "C2", "C3", "C4", "C5", "C6"},
    "answered_by_assistant": {"C1", "C2", "C3"},
    "resolved_by_assistant": {"C1"},
    "handed_to_person": {"C2", "C4", "C6"},
    "resolved": {"C1", "C2", "C4", "C5", "C6"},
    "with_fallback": {"C1"},
    "with_grounded_answer": {"C1", "C2", "C3"},
    "deflected": {"C1", "C3"},
}
