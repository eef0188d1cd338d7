"""An organisation's AI assistants: their configuration (retention: the account's).

The AI disclosure (policy §7: the assistant is clearly an automated system, and the first
reply of every conversation says so) and the fallback message can be reworded but never
emptied; check constraints hold that even for writes that bypass the service. The
per-organisation LLM key is stored encrypted and never leaves through the API.
"""

from __future__ import annotations

import enum
import secrets
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.assistants.disclosure import default_disclosure
from cybergine.db.base import Base, TenantMixin, value_enum
from cybergine.privacy.crypto import EncryptedString
from cybergine.privacy.retention import Retention

DEFAULT_LANGUAGES = ("en",)
DEFAULT_FALLBACK_MESSAGE = (
    "I'm not sure about that. Would you like me to connect you with a person?"
)
DEFAULT_AI_DISCLOSURE = default_disclosure(DEFAULT_LANGUAGES)
DEFAULT_LLM_MODEL = "gpt-4o-mini"
DEFAULT_TEMPERATURE = 0.2
DEFAULT_MAX_TOKENS = 500
MAX_TEMPERATURE = 2.0
MAX_MAX_TOKENS = 4096
MAX_ORIGIN_LENGTH = 255


def new_widget_key() -> str:
    """Public (it is in the host page), but unguessable, so nobody can list widgets."""
    return "wk_" + secrets.token_urlsafe(24)


class Tone(enum.StrEnum):
    FRIENDLY = "friendly"
    PROFESSIONAL = "professional"
    CONCISE = "concise"
    PLAYFUL = "playful"


class LlmProvider(enum.StrEnum):
    # Answers with passages of the knowledge base, on this machine: no external call.
    EXTRACTIVE = "extractive"
    # An OpenAI-compatible chat completions API (OpenAI, Azure OpenAI, Ollama, vLLM, ...).
    OPENAI = "openai"


class Assistant(TenantMixin, Base):
    __tablename__ = "assistants"
    __retention__ = Retention.ACCOUNT
    __table_args__ = (
        UniqueConstraint("organisation_id", "name"),
        CheckConstraint("btrim(ai_disclosure) <> ''", name="ai_disclosure_not_empty"),
        CheckConstraint("btrim(fallback_message) <> ''", name="fallback_message_not_empty"),
        CheckConstraint(
            f"temperature >= 0 AND temperature <= {MAX_TEMPERATURE}", name="temperature_range"
        ),
        CheckConstraint(f"max_tokens BETWEEN 1 AND {MAX_MAX_TOKENS}", name="max_tokens_range"),
    )

    name: Mapped[str] = mapped_column(String(100))
    # Who the assistant is ("Mia, the shop's helpful stylist").
    persona: Mapped[str] = mapped_column(Text, default="")
    instructions: Mapped[str] = mapped_column(Text, default="")
    tone: Mapped[Tone] = mapped_column(
        value_enum(Tone, "assistant_tone"), default=Tone.PROFESSIONAL
    )
    # BCP-47 codes ("en", "fr", "pt-BR"); the first is the default language.
    languages: Mapped[list[str]] = mapped_column(
        ARRAY(String(35)), default=lambda: list(DEFAULT_LANGUAGES)
    )
    greeting: Mapped[str] = mapped_column(Text, default="")
    fallback_message: Mapped[str] = mapped_column(Text, default=DEFAULT_FALLBACK_MESSAGE)
    ai_disclosure: Mapped[str] = mapped_column(Text, default=DEFAULT_AI_DISCLOSURE)
    # Names of the knowledge collections it may search; empty: all of them.
    knowledge_collections: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list)
    llm_provider: Mapped[LlmProvider] = mapped_column(
        value_enum(LlmProvider, "assistant_llm_provider"), default=LlmProvider.EXTRACTIVE
    )
    llm_model: Mapped[str] = mapped_column(String(100), default=DEFAULT_LLM_MODEL)
    # None: CYBERGINE_OPENAI_BASE_URL.
    llm_base_url: Mapped[str | None] = mapped_column(String(500), default=None)
    # None: CYBERGINE_OPENAI_API_KEY. Never returned by the API.
    llm_api_key: Mapped[str | None] = mapped_column(EncryptedString, default=None)
    temperature: Mapped[float] = mapped_column(Float, default=DEFAULT_TEMPERATURE)
    max_tokens: Mapped[int] = mapped_column(Integer, default=DEFAULT_MAX_TOKENS)
    # Policy §7: e-mails, phone numbers and card numbers are redacted before text is sent
    # to an external language model.
    redact_personal_data: Mapped[bool] = mapped_column(Boolean, default=True)
    # {"timezone": "Europe/Paris", "days": {"mon": [["09:00", "18:00"]], ...}}; None: always.
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    # Words and phrases that hand the conversation to a person, beyond the built-in ones.
    handoff_keywords: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # A 1-5 rating asked for when a conversation closes: on for new assistants; rows from
    # before the setting existed (and raw inserts) have it off until the merchant chooses.
    csat_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=false())
    # None: the default question in the assistant's first language (``conversations.csat``).
    csat_question: Mapped[str | None] = mapped_column(Text, default=None)
    # The web chat widget: its public key (in the page's <script data-assistant=…>), the
    # sites that may embed it, and how it looks.
    widget_key: Mapped[str] = mapped_column(String(40), unique=True, default=new_widget_key)
    allowed_origins: Mapped[list[str]] = mapped_column(
        ARRAY(String(MAX_ORIGIN_LENGTH)), default=list
    )
    # {"colour": "#0b5fff", "position": "right", "title": ..., "avatar_url": ...,
    #  "language": "en", "ask_consent": false, "privacy_notice_url": "https://..."}
    widget: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
