"""Shapes of ``GET /api/v1/analytics/top-questions`` and ``/knowledge-gaps``."""

from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import urlencode

from pydantic import BaseModel, Field

from cybergine.analytics.periods import Filters
from cybergine.analytics.question_report import Group
from cybergine.analytics.schemas import PeriodOut

# The Q&A form's question field takes 5,000 characters; a link carries at most this many.
QUESTION_PREFILL = 1000
# The drill-down parameter naming a group's conversations, per report.
GAP_PARAMETER = "knowledge_gap"
TOP_QUESTION_PARAMETER = "top_question"


class QuestionExampleOut(BaseModel):
    question: str = Field(description="What the customer wrote (their text: show it escaped)")
    asked_at: datetime
    cause: str = Field(
        description="grounded (answered from a source), fallback, or handoff (the model "
        "handed it to a person)"
    )
    conversation_id: uuid.UUID
    conversation_url: str = Field(description="The conversation in the API")


class QuestionGroupOut(BaseModel):
    id: uuid.UUID
    questions: int = Field(description="Questions of this meaning asked in the period")
    conversations: int = Field(description="Distinct conversations they were asked in")
    fallbacks: int = Field(description="Of them, answered with the fallback")
    handoffs: int = Field(description="Of them, handed to a person by the model")
    first_seen: datetime = Field(description="When the first of them was asked in the period")
    last_seen: datetime = Field(description="When the last of them was asked in the period")
    representative: str = Field(description="The question nearest the group's meaning")
    examples: list[QuestionExampleOut] = Field(description="The newest questions, newest first")
    conversations_url: str = Field(
        description="The conversations list showing the conversations behind this group"
    )
    answer_url: str = Field(
        description="The dashboard's Q&A form, pre-filled with the representative question"
    )


class TopQuestionOut(QuestionGroupOut):
    grounded: int = Field(description="Of them, answered from the knowledge base or catalogue")
    grounded_rate: float = Field(description="grounded ÷ questions")


class GapGroupOut(QuestionGroupOut):
    answered: bool = Field(description="A Q&A pair was written for it from the gaps page")
    answered_at: datetime | None
    answer_item_id: uuid.UUID | None = Field(description="That Q&A pair, while it exists")
    asked_since_answer: int = Field(
        description="Questions of the period asked after the answer was written that still "
        "got the fallback"
    )


class TopQuestionsOut(BaseModel):
    period: PeriodOut
    questions: int = Field(description="Every question of the period, in all groups")
    groups: list[TopQuestionOut] = Field(description="The groups, most asked first")


class KnowledgeGapsOut(BaseModel):
    period: PeriodOut
    questions: int = Field(description="Every gap question of the period, in all groups")
    groups: list[GapGroupOut] = Field(
        description="Open groups by questions, most asked first; then the answered ones"
    )


def gap_query(group_id: uuid.UUID, filters: Filters) -> dict[str, str]:
    """The query parameters naming the conversations behind a knowledge gap's questions
    in ``filters`` (the API's conversations list and the dashboard's inbox read them)."""
    return {GAP_PARAMETER: str(group_id), **filters.query}


def top_question_query(group_id: uuid.UUID, filters: Filters) -> dict[str, str]:
    """The query parameters naming the conversations behind all of a group's questions."""
    return {TOP_QUESTION_PARAMETER: str(group_id), **filters.query}


def answer_url(group: Group) -> str:
    """The dashboard's Q&A form pre-filled with the group's question."""
    query = urlencode({"question": group.representative[:QUESTION_PREFILL], "gap": str(group.id)})
    return f"/knowledge/qa?{query}#add-qa-heading"


def _common(group: Group, drill: dict[str, str]) -> dict[str, object]:
    return {
        "id": group.id,
        "questions": group.questions,
        "conversations": group.conversations,
        "fallbacks": group.fallbacks,
        "handoffs": group.handoffs,
        "first_seen": group.first_seen,
        "last_seen": group.last_seen,
        "representative": group.representative,
        "examples": [
            QuestionExampleOut(
                question=example.question,
                asked_at=example.asked_at,
                cause=example.cause,
                conversation_id=example.conversation_id,
                conversation_url=f"/api/v1/conversations/{example.conversation_id}",
            )
            for example in group.examples
        ],
        "conversations_url": f"/api/v1/conversations?{urlencode(drill)}",
        "answer_url": answer_url(group),
    }


def top_question_out(group: Group, filters: Filters) -> TopQuestionOut:
    return TopQuestionOut(
        **_common(group, top_question_query(group.id, filters)),
        grounded=group.grounded,
        grounded_rate=group.grounded / group.questions if group.questions else 0.0,
    )


def group_out(group: Group, filters: Filters) -> GapGroupOut:
    return GapGroupOut(
        **_common(group, gap_query(group.id, filters)),
        answered=group.answered_at is not None,
        answered_at=group.answered_at,
        answer_item_id=group.answer_item_id,
        asked_since_answer=group.asked_since_answer,
    )
