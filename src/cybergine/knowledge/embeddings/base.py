"""What every embedding provider shares: the protocol, its errors, and the lexical-only
"provider" that has nothing to embed with."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

EmbeddingKind = Literal["query", "document"]


class EmbeddingError(RuntimeError):
    """An embedding could not be made. Messages never contain the texts themselves."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ModelIntegrityError(EmbeddingError):
    """A model or tokenizer file is not the one pinned here (sha256 mismatch)."""


@runtime_checkable
class EmbeddingProvider(Protocol):
    name: str  # stable id stored with every vector
    dimensions: int
    max_tokens: int  # what the model reads per input; more is cut off

    def count_tokens(self, text: str) -> int: ...

    async def embed(
        self, texts: Sequence[str], *, kind: EmbeddingKind
    ) -> list[list[float]]: ...  # L2-normalised, one per text, in order


# --- Usage: what a paid endpoint's calls used ----------------------------------------


@dataclass
class EmbeddingUsage:
    """The calls a provider made to a billed endpoint, per (provider, model): requests,
    texts and the tokens the server reported (``usage.prompt_tokens``)."""

    calls: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def add(self, provider: str, model: str, inputs: int, tokens: int) -> None:
        found = self.calls.setdefault((provider, model), [0, 0, 0])
        found[0] += 1
        found[1] += inputs
        found[2] += tokens


_meter: ContextVar[EmbeddingUsage | None] = ContextVar("embedding_usage", default=None)


@contextmanager
def metering() -> Iterator[EmbeddingUsage]:
    """What the embedding calls made inside the block (in this task, and in tasks it
    starts) used. The local model reports nothing: it runs on this machine's CPU, which
    no price covers."""
    usage = EmbeddingUsage()
    token = _meter.set(usage)
    try:
        yield usage
    finally:
        _meter.reset(token)


def report_usage(provider: str, model: str, inputs: int, tokens: int) -> None:
    """A billed call's usage, counted by the innermost :func:`metering` block, if any."""
    usage = _meter.get()
    if usage is not None:
        usage.add(provider, model, inputs, tokens)


def normalise_rows(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    result: npt.NDArray[np.float32] = matrix / np.maximum(norms, 1e-12)
    return result


def approximate_tokens(text: str) -> int:
    return math.ceil(len(text.split()) * 1.3)


# --- Lexical-only mode ------------------------------------------------------------------


class NoEmbeddings:
    """Lexical-only mode: no vectors at all (``dimensions == 0``); ``embed`` raises.
    ``max_tokens`` stays the local model's 256 so chunks are the same size either way."""

    def __init__(self, *, max_tokens: int = 256) -> None:
        self.name = "none"
        self.dimensions = 0
        self.max_tokens = max_tokens

    def count_tokens(self, text: str) -> int:
        return approximate_tokens(text)

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind) -> list[list[float]]:
        raise EmbeddingError("lexical-only mode: no embedding model is configured")
