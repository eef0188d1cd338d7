"""API shapes of assistants. The LLM API key is write-only: it is accepted on create and
update (null removes it) and shown only as ``has_llm_api_key``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cybergine.assistants.changes import AssistantChanges
from cybergine.assistants.models import Assistant, LlmProvider, Tone


class _Settings(BaseModel):
    """Every setting optional; the service validates values and applies the defaults, so
    a PATCH can tell a field not sent from one set to null."""

    model_config = ConfigDict(extra="forbid")

    persona: str | None = None
    instructions: str | None = None
    tone: Tone | None = None
    languages: list[str] | None = Field(default=None, description="BCP-47 codes, e.g. pt-BR")
    greeting: str | None = None
    fallback_message: str | None = None
    ai_disclosure: str | None = Field(
        default=None, description="Shown in the first reply of every conversation; never empty"
    )
    knowledge_collections: list[str] | None = Field(
        default=None, description="Collections it may search; empty: all"
    )
    llm_provider: LlmProvider | None = None
    llm_model: str | None = None
    llm_base_url: str | None = Field(
        default=None,
        description="null: the server's CYBERGINE_OPENAI_BASE_URL. Another URL needs "
        "llm_api_key, https and a public host (or one the operator allows)",
    )
    llm_api_key: str | None = Field(
        default=None, description="Write-only; stored encrypted; null removes it"
    )
    temperature: float | None = Field(default=None, description="0 to 2")
    max_tokens: int | None = Field(default=None, description="1 to 4096")
    redact_personal_data: bool | None = None
    business_hours: dict[str, Any] | None = Field(
        default=None,
        description='{"timezone": "Europe/Paris", "days": {"mon": [["09:00", "18:00"]]}}; '
        "null: always open",
    )
    handoff_keywords: list[str] | None = None
    active: bool | None = None
    csat_enabled: bool | None = Field(
        default=None,
        description="Ask the customer for a 1-5 rating when a conversation closes "
        "(default for a new assistant: true)",
    )
    csat_question: str | None = Field(
        default=None,
        description="The survey's question; null or empty: a default in the assistant's "
        "first language",
    )
    allowed_origins: list[str] | None = Field(
        default=None, description="Sites that may embed the widget, e.g. https://shop.example"
    )
    widget: dict[str, Any] | None = Field(
        default=None,
        description='{"colour": "#0b5fff", "position": "right", "title": ..., '
        '"avatar_url": "https://...", "language": "en", "ask_consent": false, '
        '"privacy_notice_url": "https://shop.example/privacy"}',
    )

    def changes(self) -> AssistantChanges:
        return AssistantChanges(
            **{name: getattr(self, name) for name in type(self).model_fields},
            fields_set=set(self.model_fields_set),
        )


class AssistantIn(_Settings):
    name: str


class AssistantUpdate(_Settings):
    name: str | None = None


class AssistantOut(BaseModel):
    id: uuid.UUID
    name: str
    persona: str
    instructions: str
    tone: Tone
    languages: list[str]
    greeting: str
    fallback_message: str
    ai_disclosure: str
    knowledge_collections: list[str]
    llm_provider: LlmProvider
    llm_model: str
    llm_base_url: str | None
    has_llm_api_key: bool
    temperature: float
    max_tokens: int
    redact_personal_data: bool
    business_hours: dict[str, Any] | None
    handoff_keywords: list[str]
    active: bool
    csat_enabled: bool
    csat_question: str | None = Field(description="null: the default question")
    widget_key: str
    allowed_origins: list[str]
    widget: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, assistant: Assistant) -> AssistantOut:
        return cls(
            id=assistant.id,
            name=assistant.name,
            persona=assistant.persona,
            instructions=assistant.instructions,
            tone=assistant.tone,
            languages=list(assistant.languages),
            greeting=assistant.greeting,
            fallback_message=assistant.fallback_message,
            ai_disclosure=assistant.ai_disclosure,
            knowledge_collections=list(assistant.knowledge_collections),
            llm_provider=assistant.llm_provider,
            llm_model=assistant.llm_model,
            llm_base_url=assistant.llm_base_url,
            has_llm_api_key=assistant.llm_api_key is not None,
            temperature=assistant.temperature,
            max_tokens=assistant.max_tokens,
            redact_personal_data=assistant.redact_personal_data,
            business_hours=assistant.business_hours,
            handoff_keywords=list(assistant.handoff_keywords),
            active=assistant.active,
            csat_enabled=assistant.csat_enabled,
            csat_question=assistant.csat_question,
            widget_key=assistant.widget_key,
            allowed_origins=list(assistant.allowed_origins),
            widget=dict(assistant.widget or {}),
            created_at=assistant.created_at,
            updated_at=assistant.updated_at,
        )
