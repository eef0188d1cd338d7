"""Shared pieces of our clients for external HTTP APIs (LLM and embedding endpoints; the
WhatsApp Graph API client, on aiohttp, reads its errors with them too): reading
Retry-After, reading a server's error message, keeping input text out of our errors, and
using a caller's transport without closing it."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Self

import httpx

from cybergine.tls import client_context


class BorrowedTransport(httpx.AsyncBaseTransport):
    """A transport the caller owns: our clients use it but never close it."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        return None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` of an answer's (case-insensitive) headers, in seconds from now."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_wait(
    headers: Mapping[str, str], backoff: float, *, last: bool, longest: float
) -> float | None:
    """How long to wait before trying again after an answer worth retrying: the server's
    ``Retry-After``, else ``backoff``; None when no try is left or the server asks for
    longer than ``longest``."""
    retry_after = retry_after_seconds(headers)
    wait = backoff if retry_after is None else retry_after
    return None if last or wait > longest else wait


def server_message(body: bytes, reason: str) -> str:
    """The error message a server gave in an answer's ``body``: OpenAI's
    ``{"error": {"message"}}``, Ollama's ``{"error": "..."}``, FastAPI's ``{"detail"}``,
    else the start of the body, else the status line's ``reason``."""
    try:
        data = json.loads(body)
    except ValueError:  # not JSON, or not text at all
        return body[:1200].decode("utf-8", "replace")[:300].strip() or reason
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(data.get("message"), str):
            return str(data["message"])
        if "detail" in data:
            return str(data["detail"])[:300]
    return str(data)[:300]


def redact_inputs(message: str, texts: Sequence[str]) -> str:
    """Some servers quote the offending input back; our errors must not carry it."""
    for text in texts:
        if len(text) >= 8 and text in message:
            message = message.replace(text, "[input text]")
    return message


class AsyncClosable:
    """``async with client:`` closes the client on the way out."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class BearerClient(AsyncClosable):
    """One httpx client per event loop for an API authenticated with a bearer key, with
    extra headers and query parameters (Azure's ``api-key`` and ``api-version``)."""

    def __init__(
        self,
        *,
        api_key: str | None,
        timeout: float,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self._api_key = api_key
        self._timeout = timeout
        self._headers = dict(headers or {})
        self._params = dict(params or {})
        self._transport = BorrowedTransport(transport) if transport is not None else None
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    async def aclose(self) -> None:
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        # A client is bound to the loop it was made on; a provider shared by processes'
        # several loops (tests, the CLI) gets one per loop.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client.is_closed or self._client_loop is not loop:
            headers = {"Accept": "application/json"}
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key}"
            headers.update(self._headers)
            self._client = httpx.AsyncClient(
                transport=self._transport,
                verify=client_context(),
                timeout=httpx.Timeout(self._timeout),
                headers=headers,
                params=self._params,
            )
            self._client_loop = loop
        return self._client
