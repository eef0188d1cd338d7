"""Shared pieces of our clients for external HTTP APIs (LLM and embedding endpoints, and
later the WhatsApp Graph API): reading Retry-After, reading a server's error message,
keeping input text out of our errors, and using a caller's transport without closing it."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Sequence

import httpx


class BorrowedTransport(httpx.AsyncBaseTransport):
    """A transport the caller owns: our clients use it but never close it."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        return None


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
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


def server_message(response: httpx.Response) -> str:
    """The error message a server gave: OpenAI's ``{"error": {"message"}}``, Ollama's
    ``{"error": "..."}``, FastAPI's ``{"detail"}``, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(body.get("message"), str):
            return str(body["message"])
        if "detail" in body:
            return str(body["detail"])[:300]
    return str(body)[:300]


def redact_inputs(message: str, texts: Sequence[str]) -> str:
    """Some servers quote the offending input back; our errors must not carry it."""
    for text in texts:
        if len(text) >= 8 and text in message:
            message = message.replace(text, "[input text]")
    return message
