"""The web chat API the widget speaks (``/widget.js`` and ``/widget/v1/...``).

Public routes: a widget has no credentials but its assistant's public key and, once a
session has started, the visitor token. Browsers are held to the assistant's allowed
origins twice: CORS headers are sent only to them, and any request from another origin
is refused before it does anything (CORS alone would only hide the answer). Rate limits
per visitor and per IP address, and a message size limit, keep a public endpoint cheap.

Real time: a WebSocket that resumes after the last message the client saw, and a
long-poll fallback for networks that block sockets. Both subscribe before reading, so
nothing committed in between is missed, and both deliver by message id, so a client
that reconnects never gets a message twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocketState

from cybergine.accounts.grace import OrganisationClosing
from cybergine.accounts.throttle import address_block
from cybergine.assistants.models import MAX_ORIGIN_LENGTH, Assistant
from cybergine.bounded_cache import BoundedCache
from cybergine.channels.webchat import service, visitors
from cybergine.channels.webchat.visitors import Visitor
from cybergine.conversations import csat
from cybergine.errors import (
    CybergineError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from cybergine.ratelimits import limiter
from cybergine.ratelimits.limiter import RateLimit
from cybergine.realtime.hub import Hub
from cybergine.web import hygiene
from cybergine.web.access import public
from cybergine.web.assets import SingleAsset, asset_response
from cybergine.web.clients import client_ip, grant_origin, granted_origin, origin_of
from cybergine.web.deps import DatabaseDep
from cybergine.web.openapi import may_answer, widget_document

log = structlog.get_logger(__name__)

router = APIRouter(tags=["web chat"], include_in_schema=False)

Widget = Annotated[None, public("the web chat widget: a public key and a visitor token")]

WIDGET_JS = Path(__file__).parent / "widget" / "widget.js"
SOCKET_IDLE_SECONDS = 60.0  # no ping for this long: the client is gone
SERVICE_RESTART = 1012  # the close code of a stopping server: reconnect (elsewhere)


# Generous for a person typing, tight for a script; counted across every web process.
PER_VISITOR = RateLimit("widget-visitor", maximum=20, seconds=60)
PER_ADDRESS = RateLimit("widget-address", maximum=60, seconds=60)
SESSIONS_PER_ADDRESS = RateLimit("widget-sessions-address", maximum=30, seconds=60)


def _listed_origins(request: Request) -> BoundedCache[str, bool]:
    """Whether an origin is listed by some assistant, remembered for a while: a browser
    sends a preflight before most widget requests, and anyone can send new origins."""
    listed: BoundedCache[str, bool] | None = getattr(
        request.app.state, "widget_listed_origins", None
    )
    if listed is None:
        listed = request.app.state.widget_listed_origins = BoundedCache(
            capacity=4096, ttl_seconds=30
        )
    return listed


async def _grant_listed_origin(request: Request, database: DatabaseDep) -> None:
    """Lets the page read this request's answer (errors included) when it comes from the
    platform's own origin or one some active assistant lists: a request that does not
    reach its assistant (a preflight, an ended session, a malformed body) can say no
    more. A route that finds its assistant narrows this to that assistant's origins."""
    origin = origin_of(request.headers.get("origin"))
    if origin is None or len(origin) > MAX_ORIGIN_LENGTH:
        return  # too long for any assistant to list: neither looked up nor remembered
    if origin != _own_origin(request):
        cache = _listed_origins(request)
        listed = cache.get(origin)
        if listed is None:
            async with database.transaction() as session:
                listed = await service.origin_listed(session, origin)
            cache.put(origin, listed)
        if not listed:
            return
    grant_origin(request, origin)


ListedOrigin = Annotated[None, Depends(_grant_listed_origin)]


class SessionIn(BaseModel):
    widget_key: str = Field(min_length=1, max_length=40)
    visitor_token: str | None = Field(default=None, max_length=200)
    page_url: str | None = Field(default=None, max_length=2000)


class MessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=service.MAX_TEXT)
    client_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    button_id: str | None = Field(default=None, max_length=256)


WIDGET_ASSET = SingleAsset(WIDGET_JS)


@router.get("/widget.js")
async def widget_js(request: Request, _: Widget) -> Response:
    # Shops embed it at this fixed URL: five minutes, so a fix reaches their visitors
    # soon, then a revalidation that an unchanged script answers with an empty 304.
    return asset_response(
        await WIDGET_ASSET.get(),
        request.headers,
        cache_control="public, max-age=300",
        # Loaded by <script> on other sites: they must be allowed to.
        extra_headers={"Cross-Origin-Resource-Policy": "cross-origin"},
    )


def _own_origin(request: Request | WebSocket) -> str | None:
    host = request.headers.get("host")
    if not host:
        return None
    scheme = "https" if request.url.scheme in ("https", "wss") else "http"
    return origin_of(f"{scheme}://{host}")


def _cors(response: Response, origin: str) -> Response:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"
    response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return response


def _check_origin(request: Request, assistant: Assistant, *, required: bool = True) -> str | None:
    origin = origin_of(request.headers.get("origin"))
    if origin is None and not required:
        return None
    if not service.origin_allowed(assistant, origin, _own_origin(request)):
        grant_origin(request, None)  # the refusal is not for that site to read
        raise Forbidden("This site may not use this chat widget.")
    grant_origin(request, origin)
    return origin


def _address(request: Request) -> str:
    return limiter.address_key(address_block(client_ip(request)))


def _visitor(visitor: Visitor) -> str:
    return limiter.customer_key(visitor.customer_id)


async def _limit(
    session: AsyncSession, limit: RateLimit, organisation_id: uuid.UUID, key: str
) -> None:
    wait = await limiter.hit(session, limit, organisation_id, key)
    if wait is not None:
        raise TooManyRequests(
            "You're sending messages too quickly. Try again in a moment.",
            retry_after=max(1, round(wait)),
        )


def _reply(request: Request, origin: str | None, body: Any, status: int = 200) -> Response:
    response = JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    return _cors(response, origin) if origin else response


@router.get("/widget/v1/openapi.json")
async def widget_openapi(request: Request, _: Widget) -> JSONResponse:
    """The web chat API's own OpenAPI document (``web.openapi.widget_document``)."""
    document = getattr(request.app.state, "widget_openapi", None)
    if document is None:
        document = request.app.state.widget_openapi = widget_document(request.app)
    return JSONResponse(document)


@router.options("/widget/v1/{path:path}")
async def preflight(_: Widget, __: ListedOrigin, request: Request, path: str) -> Response:
    """The real request is checked against its assistant's origins; a preflight, which
    names no assistant, lets through the origins some assistant lists and says which
    methods and headers the API takes."""
    origin = granted_origin(request)
    response = Response(status_code=204)
    if origin is not None:
        _cors(response, origin)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = "authorization, content-type"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


@router.post(
    "/widget/v1/session",
    responses=may_answer(NotFound, Forbidden, TooManyRequests, OrganisationClosing),
    summary="Start or resume a visitor's chat with an assistant's widget key",
)
async def start_session(
    _: Widget, __: ListedOrigin, request: Request, body: SessionIn, database: DatabaseDep
) -> Response:
    async with database.transaction() as session:
        assistant = await service.assistant_by_key(session, body.widget_key)
        origin = _check_origin(request, assistant)
        # Counted once the site is known to be the shop's: another site cannot use up
        # the sessions of the shop's visitors behind a shared address.
        await _limit(session, SESSIONS_PER_ADDRESS, assistant.organisation_id, _address(request))
        visitor: Visitor | None = None
        parsed = visitors.parse(body.visitor_token)
        if parsed is not None:
            claimed, signature = parsed
            if (
                claimed.assistant_id == assistant.id
                and visitors.verify(claimed, signature, assistant.widget_key)
                and not await service.visitor_erased(session, assistant, claimed)
            ):
                visitor = claimed
        if visitor is None:
            visitor, token = visitors.issue(assistant.id, assistant.widget_key)
        else:
            token = body.visitor_token or ""
        snapshot = await service.snapshot(session, assistant, visitor)
        data = {
            "visitor_token": token,
            "config": service.config(assistant),
            "conversation": service.state_of(snapshot.conversation),
            "messages": [service.message_view(m) for m in snapshot.messages],
            "cursor": str(snapshot.messages[-1].id) if snapshot.messages else None,
        }
    return _reply(request, origin, data)


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    return value[7:].strip() if value.lower().startswith("bearer ") else None


@router.post(
    "/widget/v1/messages",
    status_code=202,
    responses=may_answer(Unauthorized, Forbidden, TooManyRequests, OrganisationClosing),
    summary="Send the visitor's message (the answer arrives by socket or long poll)",
)
async def post_message(
    _: Widget, __: ListedOrigin, request: Request, body: MessageIn, database: DatabaseDep
) -> Response:
    async with database.transaction() as session:
        assistant, visitor = await service.authenticate(session, _bearer(request))
        origin = _check_origin(request, assistant)
        await _limit(session, PER_ADDRESS, assistant.organisation_id, _address(request))
        await _limit(session, PER_VISITOR, assistant.organisation_id, _visitor(visitor))
        message = await service.post_message(
            session,
            assistant,
            visitor,
            text=body.text,
            client_id=body.client_id,
            button_id=body.button_id,
        )
        view = service.message_view(message)
    return _reply(request, origin, {"message": view}, status=202)


@router.post(
    "/widget/v1/handoff",
    status_code=202,
    responses=may_answer(Unauthorized, Forbidden, TooManyRequests, OrganisationClosing),
    summary="Ask for a person",
)
async def request_person(
    _: Widget, __: ListedOrigin, request: Request, database: DatabaseDep
) -> Response:
    async with database.transaction() as session:
        assistant, visitor = await service.authenticate(session, _bearer(request))
        origin = _check_origin(request, assistant)
        await _limit(session, PER_VISITOR, assistant.organisation_id, _visitor(visitor))
        message = await service.request_person(session, assistant, visitor)
        view = service.message_view(message)
    return _reply(request, origin, {"message": view}, status=202)


class RatingIn(BaseModel):
    survey_id: uuid.UUID
    rating: int = Field(ge=1, le=5, description="1 (poor) to 5 (excellent)")


@router.post(
    "/widget/v1/rating",
    responses=may_answer(Unauthorized, Forbidden, NotFound, TooManyRequests, OrganisationClosing),
    summary="Rate a closed conversation its survey asked about; the first rating stands",
)
async def rate(
    _: Widget, __: ListedOrigin, request: Request, body: RatingIn, database: DatabaseDep
) -> Response:
    async with database.transaction() as session:
        assistant, visitor = await service.authenticate(session, _bearer(request))
        origin = _check_origin(request, assistant)
        await _limit(session, PER_VISITOR, assistant.organisation_id, _visitor(visitor))
        rated = await csat.record_rating(
            session, assistant.organisation_id, visitor.customer_id, body.survey_id, body.rating
        )
        data = {
            "survey_id": str(rated.survey.id),
            "rating": rated.survey.rating,
            "recorded": rated.recorded,
        }
    return _reply(request, origin, data)


def _after(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput("after is not a message id.", field="after") from None


async def _frames(
    database: Any, assistant: Assistant, visitor: Visitor, after: uuid.UUID | None
) -> tuple[list[dict[str, Any]], uuid.UUID | None, str | None]:
    """Message frames after the cursor, the new cursor, and the conversation's state."""
    async with database.transaction() as session:
        snapshot = await service.snapshot(session, assistant, visitor, after=after)
    frames = [{"type": "message", "message": service.message_view(m)} for m in snapshot.messages]
    cursor = snapshot.messages[-1].id if snapshot.messages else after
    state = snapshot.conversation.state.value if snapshot.conversation is not None else None
    return frames, cursor, state


def _event_frame(event: Any) -> dict[str, Any] | None:
    if event is None:
        return None
    if event.kind == "typing":
        return {"type": "typing", "on": bool(event.data.get("on"))}
    if event.kind == "state":
        return {"type": "state", "state": str(event.data.get("state"))}
    return None


@router.get(
    "/widget/v1/events",
    responses=may_answer(Unauthorized, Forbidden, OrganisationClosing),
    summary="Long poll: messages after a cursor, held up to 25 s while there are none",
)
async def long_poll(
    _: Widget,
    __: ListedOrigin,
    request: Request,
    database: DatabaseDep,
    after: Annotated[str | None, Query(max_length=36)] = None,
) -> Response:
    """The fallback when sockets are blocked: answers at once when there is news, else
    holds the request up to CYBERGINE_WIDGET_LONG_POLL_SECONDS (25 s by default)."""
    cursor = _after(after)
    async with database.transaction() as session:
        assistant, visitor = await service.authenticate(session, _bearer(request))
    origin = _check_origin(request, assistant, required=False)
    hub: Hub = request.app.state.hub
    with hub.subscribe(customer_id=visitor.customer_id) as subscription:
        frames, cursor, _state = await _frames(database, assistant, visitor, cursor)
        if not frames:
            event = await subscription.next(request.app.state.settings.widget_long_poll_seconds)
            frames, cursor, _state = await _frames(database, assistant, visitor, cursor)
            extra = _event_frame(event)
            if extra is not None:
                frames.append(extra)
    return _reply(
        request,
        origin,
        {"events": frames, "cursor": str(cursor) if cursor else None},
    )


@router.websocket("/widget/v1/socket")
async def socket(
    websocket: WebSocket,
    _: Widget,
    token: Annotated[str | None, Query(max_length=200)] = None,
    after: Annotated[str | None, Query(max_length=36)] = None,
) -> None:
    database = websocket.app.state.database
    try:
        cursor = _after(after)
        async with database.transaction() as session:
            assistant, visitor = await service.authenticate(session, token)
        origin = origin_of(websocket.headers.get("origin"))
        if not service.origin_allowed(assistant, origin, _own_origin(websocket)):
            raise Forbidden("This site may not use this chat widget.")
    except CybergineError as error:
        # Refused before the handshake completes: the browser sees a failed connection.
        log.info("webchat.socket_refused", reason=error.detail)
        await websocket.close(code=1008)
        return

    await websocket.accept()
    hub: Hub = websocket.app.state.hub
    with hub.subscribe(customer_id=visitor.customer_id) as subscription:
        client = asyncio.create_task(_client_frames(websocket))
        try:
            frames, cursor, state = await _frames(database, assistant, visitor, cursor)
            for frame in frames:
                await websocket.send_text(json.dumps(frame))
            # Where the conversation stands now: a change made while the client was
            # away (a person joined) is shown even though its event was missed.
            if state is not None:
                await websocket.send_text(json.dumps({"type": "state", "state": state}))
            # Until the visitor leaves, or the server stops (then the last news is read
            # and sent, and the socket closes with 1012: the widget reconnects elsewhere).
            while not client.done() and not hub.closing:
                waiter = asyncio.create_task(subscription.next())
                done, _pending = await asyncio.wait(
                    {waiter, client}, return_when=asyncio.FIRST_COMPLETED
                )
                if waiter not in done:  # the client left (or fell silent)
                    waiter.cancel()
                    break
                events = [waiter.result(), *subscription.pending()]
                # New messages first, then what they change (typing stops, a person
                # joins), in the order the client should show them.
                if any(e is None or e.kind in ("message", "state") for e in events):
                    frames, cursor, _state = await _frames(database, assistant, visitor, cursor)
                    for frame in frames:
                        await websocket.send_text(json.dumps(frame))
                for event in events:
                    extra = _event_frame(event)
                    if extra is not None:
                        await websocket.send_text(json.dumps(extra))
        except WebSocketDisconnect:
            pass
        finally:
            client.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await client
            # A visitor who left has closed it already: closing again is not an error.
            if websocket.client_state is WebSocketState.CONNECTED:
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await websocket.close(code=SERVICE_RESTART if hub.closing else 1000)


async def _client_frames(websocket: WebSocket) -> None:
    """Answers pings until the client goes; returns when it does (or stays silent). A
    frame that is not a small JSON object is answered with an error frame."""
    while True:
        try:
            message = await asyncio.wait_for(websocket.receive(), SOCKET_IDLE_SECONDS)
        except (TimeoutError, WebSocketDisconnect):
            return
        if message["type"] == "websocket.disconnect":
            return
        frame = _client_frame(message.get("text"))
        if frame is None:
            await websocket.send_text(json.dumps(BAD_FRAME))
        elif frame.get("type") == "ping":
            await websocket.send_text('{"type":"pong"}')


MAX_CLIENT_FRAME_CHARS = 1024  # a ping is 15
BAD_FRAME = {"type": "error", "detail": 'Frames are JSON objects, like {"type": "ping"}.'}


def _client_frame(text: str | None) -> dict[str, Any] | None:
    if text is None or len(text) > MAX_CLIENT_FRAME_CHARS:
        return None  # a binary frame, or more than the widget ever sends
    try:
        frame = hygiene.loads(text, what="The frame")
    except hygiene.InputRefused:
        return None
    return frame if isinstance(frame, dict) else None
