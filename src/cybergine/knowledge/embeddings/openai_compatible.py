"""The provider for any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, Azure
OpenAI, Ollama, vLLM, llama.cpp server)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import numpy as np

from cybergine.knowledge.embeddings.base import (
    EmbeddingError,
    EmbeddingKind,
    approximate_tokens,
    normalise_rows,
    report_usage,
)
from cybergine.outbound import BearerClient, redact_inputs, retry_wait, server_message


class OpenAICompatibleEmbeddings(BearerClient):
    """``POST {base_url}/embeddings`` as OpenAI documents it (``base_url`` ends in ``/v1``
    for OpenAI, Ollama, vLLM and llama.cpp; Azure: the deployment's URL).

    Up to ``max_batch`` texts go in one request. 429 and 5xx answers and network errors are
    tried up to three times in all, waiting ``backoff * 2**n`` seconds or the server's
    ``Retry-After``; anything else raises :class:`EmbeddingError` with the status and the
    server's message. Vectors are checked for the configured ``dimensions`` and normalised.

    ``request_dimensions`` sends ``"dimensions"`` in the request, which text-embedding-3
    models honour by shortening their vectors; ``None`` (default) sends it only to those
    models. ``query_prefix``/``document_prefix`` are prepended by ``kind`` for models that
    want prompts (e.g. ``"search_query: "`` for nomic-embed-text).

    ``headers`` and ``params`` are added to every request; Azure OpenAI, for instance:
    ``api_key=None, headers={"api-key": KEY}, params={"api-version": "..."}`` with its
    deployment's URL as ``base_url``.

    One HTTP client per event loop is kept for connection reuse; ``aclose()`` (or ``async
    with``) releases it. A ``transport`` passed in is used but never closed.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        dimensions: int,
        timeout: float = 30,
        max_batch: int = 256,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str | None = None,
        max_tokens: int = 8191,
        request_dimensions: bool | None = None,
        query_prefix: str = "",
        document_prefix: str = "",
        max_attempts: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 60.0,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> None:
        if dimensions < 1 or max_batch < 1 or max_attempts < 1:
            raise ValueError("dimensions, max_batch and max_attempts must be at least 1")
        self.name = name or f"openai:{model}"
        self.dimensions = dimensions
        self.max_tokens = max_tokens
        self.model = model
        self.url = base_url.rstrip("/") + "/embeddings"
        super().__init__(
            api_key=api_key, timeout=timeout, headers=headers, params=params, transport=transport
        )
        self._max_batch = max_batch
        self._request_dimensions = (
            model.startswith("text-embedding-3")
            if request_dimensions is None
            else request_dimensions
        )
        self._prefix: dict[str, str] = {"query": query_prefix, "document": document_prefix}
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._max_retry_after = max_retry_after

    def count_tokens(self, text: str) -> int:
        """Approximate (words * 1.3): the model's tokenizer is on the server."""
        return approximate_tokens(text)

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind) -> list[list[float]]:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        empty = [i for i, text in enumerate(texts) if not text]
        if empty:
            # OpenAI refuses empty strings with a 400; say so before sending anything.
            raise EmbeddingError(f"cannot embed an empty text (input {empty[0]})")
        prefix = self._prefix[kind]
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._max_batch):
            batch = [prefix + text for text in texts[start : start + self._max_batch]]
            vectors.extend(await self._embed_batch(batch))
        return vectors

    # -- internals --

    async def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        payload: dict[str, Any] = {"model": self.model, "input": batch}
        if self._request_dimensions:
            payload["dimensions"] = self.dimensions
        response = await self._post(payload, batch)
        return self._parse(response, batch)

    async def _post(self, payload: dict[str, Any], batch: list[str]) -> httpx.Response:
        client = self._http()
        for attempt in range(1, self._max_attempts + 1):
            last = attempt == self._max_attempts
            wait = self._backoff * 2 ** (attempt - 1)
            try:
                response = await client.post(self.url, json=payload)
            except httpx.TransportError as exc:
                if last:
                    raise EmbeddingError(
                        f"embedding request to {self.url} failed after {attempt} attempts: "
                        + (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
                    ) from None
                await asyncio.sleep(wait)
                continue
            status = response.status_code
            if status < 400:
                return response
            message = redact_inputs(server_message(response.content, response.reason_phrase), batch)
            if status == 429 or status >= 500:
                later = retry_wait(response.headers, wait, last=last, longest=self._max_retry_after)
                if later is not None:
                    await asyncio.sleep(later)
                    continue
                raise EmbeddingError(
                    f"embedding request to {self.url} failed with HTTP {status} after "
                    f"{attempt} attempt{'s' if attempt > 1 else ''}: {message}",
                    status=status,
                )
            raise EmbeddingError(
                f"embedding request to {self.url} refused with HTTP {status}: {message}",
                status=status,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _report(self, body: dict[str, Any], batch: list[str]) -> None:
        """The call's usage for the analytics (``metering``): the tokens the server
        reported, or the chunker's estimate when it reports none; the model it served."""
        usage = body.get("usage")
        tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
            tokens = sum(approximate_tokens(text) for text in batch)
        served = body.get("model")
        model = served if isinstance(served, str) and served else self.model
        report_usage(self.name, model, len(batch), tokens)

    def _parse(self, response: httpx.Response, batch: list[str]) -> list[list[float]]:
        expected = len(batch)

        def malformed(why: str) -> EmbeddingError:
            return EmbeddingError(
                f"malformed embedding response from {self.url}: {why}",
                status=response.status_code,
            )

        try:
            body = response.json()
        except ValueError:
            raise malformed("not JSON") from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise malformed('no "data" list')
        if len(data) != expected:
            raise malformed(f"{len(data)} embeddings for {expected} inputs")
        rows: list[Any] = [None] * expected
        for item in data:
            index = item.get("index") if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < expected or rows[index] is not None:
                raise malformed("missing, duplicate or out-of-range index")
            embedding = item.get("embedding")
            if not isinstance(embedding, list):
                raise malformed('"embedding" is not a list of floats')
            if len(embedding) != self.dimensions:
                raise EmbeddingError(
                    f"model {self.model!r} at {self.url} returned {len(embedding)}-dimensional "
                    f"vectors, expected {self.dimensions}",
                    status=response.status_code,
                )
            rows[index] = embedding
        try:
            matrix = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            raise malformed('"embedding" is not a list of floats') from None
        norms = np.linalg.norm(matrix, axis=1)
        if not np.all(np.isfinite(matrix)) or np.any(norms == 0):
            raise malformed("a zero or non-finite vector")
        result: list[list[float]] = normalise_rows(matrix).tolist()
        self._report(body, batch)
        return result
