"""Customer satisfaction (CSAT) surveys: when a conversation closes, the customer is
asked once for a 1-5 rating; their answer is recorded once.

Asking (:func:`send_survey`, called by every close that may ask: a person closing it in
the inbox; an erasure's close never asks; ``tests/conversations/test_csat_close_paths``
lists every close there is). Never for an assistant
with the survey off, for a customer erased, restricted, objecting or opted out, outside
the channel's window (WhatsApp: 24 hours after the customer's last message), or twice
for one conversation (``csat_surveys.conversation_id`` is unique). The survey is an
ordinary outbound message (``queue_outbound``: WhatsApp defers its delivery job by name,
web chat stores it as sent), whose payload carries the survey's id and a five-row list
(``list``: WhatsApp's reply buttons stop at three, so it shows an interactive list; the
widget shows five stars instead, from ``payload["csat"]``).

Answering (:func:`record_rating`): the widget posts a rating for the survey's id; on
WhatsApp the customer picks a row (its id names the survey and the rating) or types a
digit from 1 to 5 while their latest survey, sent in the last 24 hours, waits for its
answer and no newer conversation has begun (:func:`take_whatsapp_answer`). That message
is kept in the surveyed conversation, starts no new one and gets no assistant answer.
The first rating stands: a second one for the same survey changes nothing. A survey is
found only among the organisation's and the customer's own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.assistants.models import Assistant
from cybergine.conversations.channel import may_send_free_form
from cybergine.conversations.csat_models import HIGHEST_RATING, LOWEST_RATING, CsatSurvey
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
from cybergine.conversations.service import next_message_id, queue_outbound
from cybergine.db.ids import uuid7
from cybergine.errors import InvalidInput, NotFound
from cybergine.realtime.events import Event, publish

# A row's id on WhatsApp: "csat:<survey id>:<rating>".
CHOICE_PREFIX = "csat:"
# How long after the survey a typed digit still answers it.
ANSWER_WINDOW = timedelta(hours=24)
RATINGS = tuple(range(LOWEST_RATING, HIGHEST_RATING + 1))

# The question (and the label of WhatsApp's list button, at most 20 characters) in the
# languages the assistants speak; another language gets English.
_WORDING: dict[str, tuple[str, str]] = {
    "en": ("How would you rate this conversation? 1 is poor, 5 is excellent.", "Rate"),
    "fr": ("Comment évaluez-vous cette conversation ? 1 : mauvaise, 5 : excellente.", "Noter"),
    "de": ("Wie bewerten Sie dieses Gespräch? 1 ist schlecht, 5 ist ausgezeichnet.", "Bewerten"),
    "es": ("¿Cómo valorarías esta conversación? 1 es mala, 5 es excelente.", "Valorar"),
    "pt": ("Como avalia esta conversa? 1 é má, 5 é excelente.", "Avaliar"),
    "it": ("Come valuti questa conversazione? 1 è pessima, 5 è eccellente.", "Valuta"),
    "nl": ("Hoe beoordeelt u dit gesprek? 1 is slecht, 5 is uitstekend.", "Beoordelen"),
}
_TYPED = re.compile(r"\s*([1-5])\s*[.!]?\s*")


def _wording(languages: Sequence[str]) -> tuple[str, str]:
    for tag in languages:
        found = _WORDING.get(tag.split("-", 1)[0].lower())
        if found is not None:
            return found
    return _WORDING["en"]


def default_question(languages: Sequence[str]) -> str:
    """The question in the first of ``languages`` that has one, else in English."""
    return _wording(languages)[0]


def question_of(assistant: Assistant) -> str:
    return assistant.csat_question or default_question(assistant.languages)


def stars(rating: int) -> str:
    return "\u2605" * rating + "\u2606" * (HIGHEST_RATING - rating)


def survey_payload(survey_id: uuid.UUID, languages: Sequence[str]) -> dict[str, Any]:
    """What the survey message carries: its survey (the widget's stars) and the five
    rows WhatsApp shows, best first."""
    return {
        "csat": {"survey_id": str(survey_id), "rating": None},
        "list": {
            "button": _wording(languages)[1],
            "sections": [
                {
                    "title": "",
                    "rows": [
                        {"id": f"{CHOICE_PREFIX}{survey_id}:{n}", "title": f"{stars(n)} {n}"}
                        for n in reversed(RATINGS)
                    ],
                }
            ],
        },
    }


async def send_survey(session: AsyncSession, conversation: Conversation) -> CsatSurvey | None:
    """Ask the customer of ``conversation`` (just closed, locked by the caller) for their
    rating, when every rule allows it; None when it does not."""
    if conversation.assistant_id is None or conversation.state != ConversationState.CLOSED:
        return None
    assistant = await session.get(Assistant, conversation.assistant_id)
    if assistant is None or not assistant.csat_enabled:
        return None
    customer = await session.get_one(Customer, conversation.customer_id)
    if (
        customer.erased
        or customer.opted_out_at is not None
        or customer.processing_restricted_at is not None
        or customer.objected_at is not None
        or not may_send_free_form(conversation.channel, conversation.last_inbound_at)
    ):
        return None
    survey_id = uuid7()
    created = await session.scalar(
        insert(CsatSurvey)
        .values(
            id=survey_id,
            organisation_id=conversation.organisation_id,
            conversation_id=conversation.id,
            customer_id=conversation.customer_id,
        )
        .on_conflict_do_nothing(index_elements=[CsatSurvey.conversation_id])
        .returning(CsatSurvey.id)
    )
    if created is None:
        return None  # asked already
    message = await queue_outbound(
        session,
        conversation,
        sender=Sender.SYSTEM,
        type="interactive",
        text=question_of(assistant),
        payload=survey_payload(survey_id, assistant.languages),
    )
    survey = await session.get_one(CsatSurvey, survey_id)
    survey.message_id = message.id
    await session.flush()
    return survey


@dataclass(frozen=True)
class Rated:
    survey: CsatSurvey
    recorded: bool  # False: it had its rating already, which stands


def check_rating(rating: int) -> int:
    if rating not in RATINGS:
        raise InvalidInput("A rating is a whole number from 1 to 5.", field="rating")
    return rating


async def record_rating(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    customer_id: uuid.UUID,
    survey_id: uuid.UUID,
    rating: int,
) -> Rated:
    """The customer's rating of the survey ``survey_id``, theirs in the organisation
    (NotFound otherwise). The first rating stands; a later one changes nothing."""
    check_rating(rating)
    survey = await session.scalar(
        select(CsatSurvey)
        .where(
            CsatSurvey.organisation_id == organisation_id,
            CsatSurvey.customer_id == customer_id,
            CsatSurvey.id == survey_id,
        )
        .with_for_update()
    )
    if survey is None:
        raise NotFound("No such survey.")
    if survey.rating is not None:
        return Rated(survey, recorded=False)
    survey.rating = rating
    survey.rated_at = datetime.now(UTC)
    if survey.message_id is not None:
        # The survey message says it was answered (the widget shows the stars chosen).
        message = await session.get(Message, survey.message_id)
        if message is not None and isinstance(message.payload, dict):
            shown = dict(message.payload.get("csat") or {})
            message.payload = {**message.payload, "csat": {**shown, "rating": rating}}
    # The conversation changed for analytics: its hour is recomputed by the next refresh.
    await session.execute(
        update(Conversation)
        .where(
            Conversation.organisation_id == organisation_id,
            Conversation.id == survey.conversation_id,
        )
        .values(updated_at=func.now())
    )
    await session.flush()
    return Rated(survey, recorded=True)


def survey_choice(choice_id: object) -> tuple[uuid.UUID, int] | None:
    """The survey and rating a WhatsApp list row's id names, if it is one of ours."""
    if not isinstance(choice_id, str) or not choice_id.startswith(CHOICE_PREFIX):
        return None
    survey, _, rating = choice_id[len(CHOICE_PREFIX) :].rpartition(":")
    try:
        return uuid.UUID(survey), int(rating)
    except ValueError:
        return None


def typed_rating(text: str | None) -> int | None:
    """A message that is just a digit from 1 to 5 ("4", " 5. ")."""
    match = _TYPED.fullmatch(text or "")
    return int(match.group(1)) if match else None


def may_answer_survey(type: str, text: str | None, payload: Any) -> bool:
    """Whether a WhatsApp message could be a survey's answer (pure: no database); only
    these take the path that looks for a survey waiting (:func:`take_whatsapp_answer`)."""
    choice = payload.get("choice_id") if isinstance(payload, dict) else None
    if survey_choice(choice) is not None:
        return True
    return type == "text" and typed_rating(text) is not None


def is_survey_choice(payload: Any) -> bool:
    """A chosen survey row: never a question for the assistant."""
    choice = payload.get("choice_id") if isinstance(payload, dict) else None
    return survey_choice(choice) is not None


@dataclass(frozen=True)
class Answer:
    """A WhatsApp message as :func:`take_whatsapp_answer` reads it."""

    organisation_id: uuid.UUID
    whatsapp_number_id: uuid.UUID | None
    customer_external_id: str
    external_id: str
    type: str
    text: str | None
    payload: dict[str, Any] | None
    sent_at: datetime


async def take_whatsapp_answer(session: AsyncSession, answer: Answer) -> bool:
    """When the message answers a survey of this customer's: the message is kept in the
    surveyed conversation, the rating recorded (if it is the first), and True returned,
    so the caller records the message nowhere else. False: an ordinary message."""
    choice = survey_choice(
        answer.payload.get("choice_id") if isinstance(answer.payload, dict) else None
    )
    typed = typed_rating(answer.text) if answer.type == "text" else None
    if choice is None and typed is None:
        return False
    customer = await session.scalar(
        select(Customer).where(
            Customer.organisation_id == answer.organisation_id,
            Customer.channel == Channel.WHATSAPP,
            Customer.external_id == answer.customer_external_id,
        )
    )
    if customer is None or customer.erased:
        return False
    statement = select(CsatSurvey).where(
        CsatSurvey.organisation_id == answer.organisation_id,
        CsatSurvey.customer_id == customer.id,
    )
    if choice is not None:
        statement = statement.where(CsatSurvey.id == choice[0])
    else:
        statement = statement.where(CsatSurvey.created_at > func.now() - ANSWER_WINDOW).order_by(
            CsatSurvey.created_at.desc()
        )
    survey = await session.scalar(statement.limit(1))
    if survey is None:
        return False
    conversation = await session.scalar(
        select(Conversation)
        .where(
            Conversation.organisation_id == answer.organisation_id,
            Conversation.id == survey.conversation_id,
        )
        .with_for_update()
    )
    if conversation is None or conversation.whatsapp_number_id != answer.whatsapp_number_id:
        return False
    if typed is not None and (survey.rating is not None or await _newer(session, conversation)):
        return False  # a digit typed after the answer, or in a new conversation: a message
    already = await session.scalar(
        select(Message.id).where(
            Message.organisation_id == answer.organisation_id,
            Message.external_id == answer.external_id,
        )
    )
    if already is not None:
        return True  # a delivery seen before
    message = Message(
        id=next_message_id(conversation),
        organisation_id=answer.organisation_id,
        conversation_id=conversation.id,
        direction=Direction.INBOUND,
        sender=Sender.CUSTOMER,
        type=answer.type[:32],
        text=answer.text,
        payload=answer.payload,
        external_id=answer.external_id,
        status=MessageStatus.RECEIVED,
        sent_at=answer.sent_at,
        send_attempts=0,
    )
    session.add(message)
    conversation.last_message_at = datetime.now(UTC)
    await session.flush()
    await publish(
        session,
        Event(
            answer.organisation_id,
            conversation.id,
            "message",
            message.id,
            customer_id=conversation.customer_id,
        ),
    )
    rating = choice[1] if choice is not None else typed
    if rating in RATINGS:
        await record_rating(session, answer.organisation_id, customer.id, survey.id, rating)
    return True


async def _newer(session: AsyncSession, conversation: Conversation) -> bool:
    """Whether the customer began another conversation since this one."""
    found = await session.scalar(
        select(Conversation.id)
        .where(
            Conversation.organisation_id == conversation.organisation_id,
            Conversation.customer_id == conversation.customer_id,
            Conversation.created_at > conversation.created_at,
        )
        .limit(1)
    )
    return found is not None
