"""Shapes of ``GET /api/v1/analytics/knowledge-gaps``."""

from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import urlencode

from pydantic import BaseModel, Field

from cybergine.analytics.gap_report import Group
from cybergine.analytics.periods import Filters
from cybergine.analytics.schemas import PeriodOut

# The Q&A form's question field takes 5,000 characters; a link carries at most this many.
QUESTION_PREFILL = 1000


class GapExampleOut(BaseModel):
    question: str = Field(description="What the customer wrote (their text: show it escaped)")
    asked_at: datetime
    cause: str = Field(description="fallback, or handoff (the model handed it to a person)")
    conversation_id: uuid.UUID
    conversation_url: str = Field(description="The conversation in the API")


class GapGroupOut(BaseModel):
    id: uuid.UUID
    questions: int = Field(description="Questions of this meaning asked in the period")
    conversations: int = Field(description="Distinct conversations they were asked in")
    fallbacks: int
    handoffs: int
    first_seen: datetime = Field(description="When the first of them was asked in the period")
    last_seen: datetime = Field(description="When the last of them was asked in the period")
    representative: str = Field(description="The question nearest the group's meaning")
    examples: list[GapExampleOut] = Field(description="The newest questions, newest first")
    answered: bool = Field(description="A Q&A pair was written for it from the gaps page")
    answered_at: datetime | None
    answer_item_id: uuid.UUID | None = Field(description="That Q&A pair, while it exists")
    asked_since_answer: int = Field(
        description="Questions of the period asked after the answer was written that still "
        "got the fallback"
    )
    conversations_url: str = Field(
        description="The conversations list showing the conversations behind this group"
    )
    answer_url: str = Field(
        description="The dashboard's Q&A form, pre-filled with the representative question"
    )


class KnowledgeGapsOut(BaseModel):
    period: PeriodOut
    questions: int = Field(description="Every gap question of the period, in all groups")
    groups: list[GapGroupOut] = Field(
        description="Open groups by questions, most asked first; then the answered ones"
    )


def gap_query(group_id: uuid.UUID, filters: Filters) -> dict[str, str]:
    """The query parameters naming the conversations behind a group's questions in
    ``filters`` (the API's conversations list and the dashboard's inbox read them)."""
    return {"knowledge_gap": str(group_id), **filters.query}


def conversations_url(group_id: uuid.UUID, filters: Filters) -> str:
    """The conversations list showing the conversations behind a group's questions."""
    return f"/api/v1/conversations?{urlencode(gap_query(group_id, filters))}"


def answer_url(group: Group) -> str:
    """The dashboard's Q&A form pre-filled with the group's question."""
    query = urlencode({"question": group.representative[:QUESTION_PREFILL], "gap": str(group.id)})
    return f"/knowledge/qa?{query}#add-qa-heading"


def group_out(group: Group, filters: Filters) -> GapGroupOut:
    return GapGroupOut(
        id=group.id,
        questions=group.questions,
        conversations=group.conversations,
        fallbacks=group.fallbacks,
        handoffs=group.handoffs,
        first_seen=group.first_seen,
        last_seen=group.last_seen,
        representative=group.representative,
        examples=[
            GapExampleOut(
                question=example.question,
                asked_at=example.asked_at,
                cause=example.cause,
                conversation_id=example.conversation_id,
                conversation_url=f"/api/v1/conversations/{example.conversation_id}",
            )
            for example in group.examples
        ],
        answered=group.answered_at is not None,
        answered_at=group.answered_at,
        answer_item_id=group.answer_item_id,
        asked_since_answer=group.asked_since_answer,
        conversations_url=conversations_url(group.id, filters),
        answer_url=answer_url(group),
    )
