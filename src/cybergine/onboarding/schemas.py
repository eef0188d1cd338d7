"""API shapes of the overview: the getting-started checklist and today's numbers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from cybergine.conversations.activity import TodayNumbers
from cybergine.onboarding.service import Checklist


class StepOut(BaseModel):
    key: str = Field(description="assistant, knowledge, try, live or team")
    title: str
    url: str = Field(description="The dashboard page where the step is done.")
    done: bool


class TodayOut(BaseModel):
    open_conversations: int
    waiting_for_person: int = Field(description="Handed to a person, not yet taken over.")
    replies_sent_today: int = Field(
        description="Sent by the assistant or a person since day_started_at."
    )
    day_started_at: datetime = Field(description="Midnight UTC: the day the counts cover.")

    @classmethod
    def of(cls, numbers: TodayNumbers) -> TodayOut:
        return cls(
            open_conversations=numbers.open_conversations,
            waiting_for_person=numbers.waiting_for_person,
            replies_sent_today=numbers.replies_sent_today,
            day_started_at=numbers.day_started_at,
        )


class OverviewOut(BaseModel):
    steps: list[StepOut]
    complete: bool
    documents_being_read: int = Field(
        description="Documents and Q&A still queued or being indexed: not answered from yet."
    )
    today: TodayOut

    @classmethod
    def of(cls, checklist: Checklist, numbers: TodayNumbers) -> OverviewOut:
        return cls(
            steps=[
                StepOut(key=s.key, title=s.title, url=s.url, done=s.done) for s in checklist.steps
            ],
            complete=checklist.complete,
            documents_being_read=checklist.being_read,
            today=TodayOut.of(numbers),
        )
