"""Language-model providers: a conversation in, one completion (text or tool calls) out.

:class:`LLMProvider` is the small protocol the assistants use, with the messages, tool
calls and tools it speaks of; :class:`cybergine.llm.openai_chat.OpenAICompatibleChat`
implements it for any ``/v1/chat/completions`` endpoint. This module does not import the
``openai`` SDK, which that one does: the SDK's models take about a third of a second of
every process's start, and only a process that calls a model needs them.

Errors are :class:`LLMError`: it says whether trying again later may help (``retryable``)
and carries the HTTP status and the server's message, never the conversation itself.
This module is a pure pipeline: it reads no settings and opens no session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant", "tool"]
_ROLES: frozenset[str] = frozenset(("system", "user", "assistant", "tool"))


@dataclass(frozen=True)
class ToolCall:
    """A function the model asks us to call. ``arguments`` is the parsed JSON object; when
    the model sent something that is not a JSON object, ``arguments`` is ``{}`` and
    ``raw_arguments`` keeps what it sent (``None`` when the arguments parsed)."""

    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str | None = None

    @property
    def arguments_valid(self) -> bool:
        return self.raw_arguments is None


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()  # assistant messages only
    tool_call_id: str | None = None  # tool messages only: the call this answers
    name: str | None = None

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ValueError(f"unknown message role {self.role!r}")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("a tool message, and only a tool message, needs a tool_call_id")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # a JSON schema for the arguments object


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    content: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None  # "stop", "length", "tool_calls", "content_filter", ...
    usage: Usage  # zeros when the server did not report it
    model: str


class LLMError(RuntimeError):
    """A completion could not be had. ``retryable``: the request may succeed later (rate
    limit, server error, timeout, network); ``status``: the last HTTP status, if any;
    ``attempts``: requests made. Messages never contain the conversation."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.attempts = attempts


@runtime_checkable
class LLMProvider(Protocol):
    name: str  # stable id, recorded with what it produced

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float = 0.2,
        max_tokens: int = 500,
    ) -> Completion: ...


SEARCH_KNOWLEDGE_TOOL = ToolSpec(
    name="search_knowledge",
    description=(
        "Search the business's knowledge base (help articles, policies, Q&A, products) "
        "and return the most relevant passages with their sources."
    ),
    parameters={
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "What to look for, in the customer's language.",
            }
        },
        "required": ["query"],
        "additionalProperties": False,
    },
)

SEARCH_PRODUCTS_TOOL = ToolSpec(
    name="search_products",
    description=(
        "Search the shop's product catalogue. Returns matching products with their price, "
        "currency, availability, matching variant and link. Use it for any question about "
        "products, prices, sizes, colours or stock; quote prices and availability exactly "
        "as returned, and never present a product with available=false as in stock."
    ),
    parameters={
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "The product words, e.g. 'waterproof trail shoes' (may be empty).",
            },
            "min_price": {"type": "number", "minimum": 0, "description": "Lowest price."},
            "max_price": {"type": "number", "minimum": 0, "description": "Highest price."},
            "currency": {
                "type": "string",
                "description": "ISO 4217 code of the prices, e.g. EUR (never converted).",
            },
            "in_stock": {
                "type": "boolean",
                "description": "Only products that can be ordered now.",
            },
            "options": {
                "type": "object",
                "description": "Option values the variant must have, e.g. "
                '{"size": "42", "color": "black"}.',
                "additionalProperties": {"type": "string"},
            },
            "collection": {"type": "string", "description": "A collection's name."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
)

HANDOFF_TOOL = ToolSpec(
    name="handoff_to_human",
    description=(
        "Hand the conversation to a person on the team: when the customer asks for one, "
        "when the knowledge base does not answer, or when the request needs a human decision."
    ),
    parameters={
        "type": "object",
        "properties": {
            "reason": {
                "type": "string",
                "description": "Why a person is needed, in one sentence, for the team.",
            }
        },
        "required": ["reason"],
        "additionalProperties": False,
    },
)
