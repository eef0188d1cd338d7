"""``HEAD`` answered wherever ``GET`` is, in one place.

FastAPI's routes answer only the methods they declare, so a ``@router.get`` route
answers ``HEAD`` with 405 (Starlette's plain routes add it; FastAPI's do not). Adding
``HEAD`` to every route would also add it to the OpenAPI document as an operation of its
own. Instead a ``HEAD`` request goes through the app as the ``GET`` it asks about, and
only the status and headers go back: the same authorisation, the same redirects, the same
``Content-Length`` and ``ETag`` a ``GET`` would get, and no body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        body_sent = False

        async def send_headers_only(message: Message) -> None:
            nonlocal body_sent
            if message["type"] == "http.response.start":
                await send(message)
            elif not body_sent:
                # One empty, final body message ends the response; whatever else the
                # app sends (the rest of a streamed body) is dropped as it comes.
                body_sent = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
