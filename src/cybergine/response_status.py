"""The status an HTTP response starts with, recorded as its messages pass: what the
middlewares that count, log or trace requests read once the app has answered."""

from __future__ import annotations

from starlette.types import Message, Send


class ResponseStatus:
    """``send`` for the app inside, passing every message on to the ``send`` it wraps;
    ``code`` is the response's status, 500 until one starts (an app that raised first)."""

    def __init__(self, send: Send) -> None:
        self.code = 500
        self._send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.code = message["status"]
        await self._send(message)
