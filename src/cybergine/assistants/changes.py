"""What a create or update of an assistant asks to write, as the API, the dashboard and
the install of a Shopify shop hand it to ``assistants.service``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cybergine.assistants.models import LlmProvider, Tone


@dataclass
class AssistantChanges:
    """The settings to write. Only the names in ``fields_set`` are applied (so a PATCH
    can tell "not sent" from "set to null"); on create the others keep their defaults."""

    name: str | None = None
    persona: str | None = None
    instructions: str | None = None
    tone: Tone | None = None
    languages: Sequence[str] | None = None
    greeting: str | None = None
    fallback_message: str | None = None
    ai_disclosure: str | None = None
    knowledge_collections: Sequence[str] | None = None
    llm_provider: LlmProvider | None = None
    llm_model: str | None = None
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    redact_personal_data: bool | None = None
    business_hours: Mapping[str, Any] | None = None
    handoff_keywords: Sequence[str] | None = None
    active: bool | None = None
    csat_enabled: bool | None = None
    csat_question: str | None = None
    allowed_origins: Sequence[str] | None = None
    widget: Mapping[str, Any] | None = None
    fields_set: set[str] = field(default_factory=set)
