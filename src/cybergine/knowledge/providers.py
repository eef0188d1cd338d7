"""Which embedding provider and which extraction processes this process uses, from the
settings (one of each per process)."""

from __future__ import annotations

import functools
import threading

from cybergine.knowledge.embeddings import (
    EmbeddingProvider,
    LocalMiniLM,
    OpenAICompatibleEmbeddings,
)
from cybergine.knowledge.extraction_process import ExtractionProcesses
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


_extractions: dict[tuple[float, int, int], ExtractionProcesses] = {}
_extractions_lock = threading.Lock()


def extraction_processes(settings: Settings) -> ExtractionProcesses:
    """Where this process reads uploaded files (one pool per distinct set of limits)."""
    key = (
        settings.extraction_timeout_seconds,
        settings.extraction_memory_mb,
        settings.extraction_concurrency,
    )
    with _extractions_lock:
        found = _extractions.get(key)
        if found is None:
            found = _extractions[key] = ExtractionProcesses(
                timeout_seconds=key[0], memory_bytes=key[1] * 1024 * 1024, concurrency=key[2]
            )
        return found


def stop_extractions() -> None:
    """Kill every extraction running in this process: it is shutting down, and a child
    must neither outlive it nor hold up its exit."""
    with _extractions_lock:
        pools = list(_extractions.values())
    for pool in pools:
        pool.kill_running()
