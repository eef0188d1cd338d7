"""Which embedding provider this process uses, from the settings (one per process)."""

from __future__ import annotations

import functools

from cybergine.knowledge.embeddings import (
    EmbeddingProvider,
    LocalMiniLM,
    OpenAICompatibleEmbeddings,
)
from cybergine.knowledge.models import EMBEDDING_DIMENSIONS
from cybergine.settings import Settings


@functools.cache
def _cached(
    kind: str, base_url: str, api_key: str | None, model: str, threads: int
) -> EmbeddingProvider | None:
    if kind == "none":
        return None
    if kind == "openai":
        return OpenAICompatibleEmbeddings(
            base_url=base_url, api_key=api_key, model=model, dimensions=EMBEDDING_DIMENSIONS
        )
    return LocalMiniLM(intra_op_num_threads=threads)


def embedding_provider(settings: Settings) -> EmbeddingProvider | None:
    """None means lexical search only."""
    return _cached(
        settings.embeddings,
        settings.openai_base_url,
        settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
        settings.embeddings_model,
        settings.embedding_threads,
    )
