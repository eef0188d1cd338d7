"""The agent inbox: every conversation of the organisation, one conversation with its
history, and what a person on the team does with it (take over, reply, note, assign,
hand back, close). Live updates come as Server-Sent Events from ``/inbox/events``; the
pages refresh their parts over HTMX when one arrives (``static/app.js``)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.accounts.principal import Principal
from cybergine.analytics import service as analytics
from cybergine.conversations import inbox, inbox_views, service
from cybergine.conversations.handback import WaitingMessage, has_waiting_message
from cybergine.conversations.models import Channel, Conversation, ConversationState
from cybergine.dashboard.analytics_drill import Drill, drill_of
from cybergine.dashboard.templating import redirect, render, render_page
from cybergine.db.tenancy import TenantScope
from cybergine.errors import CybergineError, InvalidInput
from cybergine.realtime.hub import Hub

router = APIRouter(include_in_schema=False)

Reader = Annotated[Caller, authorize(Permission.CONVERSATIONS_READ)]
Replier = Annotated[Caller, authorize(Permission.CONVERSATIONS_REPLY)]

MAX_REPLY = service.MAX_AGENT_TEXT

STATE_FILTERS: dict[str, frozenset[ConversationState] | None] = {
    "open": frozenset(
        {ConversationState.BOT, ConversationState.WAITING_FOR_HUMAN, ConversationState.HUMAN}
    ),
    "waiting_for_human": frozenset({ConversationState.WAITING_FOR_HUMAN}),
    "human": frozenset({ConversationState.HUMAN}),
    "bot": frozenset({ConversationState.BOT}),
    "closed": frozenset({ConversationState.CLOSED}),
    "all": None,
}
STATE_LABELS = {
    "open": "All open",
    "waiting_for_human": "Waiting for a person",
    "human": "With a person",
    "bot": "With the assistant",
    "closed": "Closed",
    "all": "All",
}
CHANNEL_LABELS = {"": "Any channel", Channel.WHATSAPP.value: "WhatsApp", "webchat": "Web chat"}

WINDOW_CLOSED = (
    "Not sent: the customer last wrote more than 24 hours ago, and WhatsApp only lets "
    "approved message templates through until they write again. Your text is kept below."
)

# Server-Sent Events.
KEEP_ALIVE_SECONDS = 15.0
POLL_SECONDS = 1.0  # how often a quiet stream looks for a gone client
COALESCE_SECONDS = 0.2  # a burst of events (a reply and its state change) goes out once
STREAM_SECONDS = 300.0  # then the browser reconnects, and is authorised again
RETRY_MILLISECONDS = 3000


# --- The list -------------------------------------------------------------------------


def _filters(
    caller: Caller, state: str, assignee: str, channel: str
) -> tuple[inbox_views.InboxFilter, dict[str, str]]:
    """The filter the query asks for, and the query's parameters that differ from the
    defaults (for links that keep them)."""
    if state not in STATE_FILTERS:
        raise InvalidInput("Choose one of the states offered.", field="state")
    try:
        chosen_channel = Channel(channel) if channel else None
    except ValueError as exc:
        raise InvalidInput("Choose one of the channels offered.", field="channel") from exc
    unassigned = assignee == "unassigned"
    assigned_user_id: uuid.UUID | None = None
    if assignee == "me":
        # An API key has no inbox of its own: "me" is nobody.
        assigned_user_id = caller.principal.user_id or uuid.UUID(int=0)
    elif assignee not in ("anyone", "unassigned"):
        try:
            assigned_user_id = uuid.UUID(assignee)
        except ValueError as exc:
            raise InvalidInput("Choose one of the people offered.", field="assignee") from exc
    query = {
        key: value
        for key, value, default in (
            ("state", state, "open"),
            ("assignee", assignee, "anyone"),
            ("channel", channel, ""),
        )
        if value != default
    }
    return (
        inbox_views.InboxFilter(
            states=STATE_FILTERS[state],
            unassigned=unassigned,
            assigned_user_id=assigned_user_id,
            channel=chosen_channel,
        ),
        query,
    )


StateQuery = Annotated[str, Query(max_length=40)]
AssigneeQuery = Annotated[str, Query(max_length=40)]
ChannelQuery = Annotated[str, Query(max_length=40)]
CursorQuery = Annotated[str | None, Query(max_length=500)]


@dataclass(frozen=True)
class _Listing:
    caller: Caller
    context: dict[str, Any]


async def _listing(
    caller: Reader,
    drill: Annotated[Drill | None, Depends(drill_of)],
    state: StateQuery = "",
    assignee: AssigneeQuery = "anyone",
    channel: ChannelQuery = "",
    cursor: CursorQuery = None,
) -> _Listing:
    """The inbox list for the filters in the query string (both pages below show it), and
    who asks (this dependency is the routes' protection). An analytics drill-down
    (``analytics_drill``) lists the conversations behind a figure, in every state."""
    state = state or ("all" if drill else "open")
    filters, query = _filters(caller, state, assignee, channel)
    if drill is not None:
        await analytics.check_filters(caller.scope, drill.filters)
        among = drill.conversations(caller.principal.organisation_id)
        filters = replace(filters, among=among)
        query = {**drill.query, "state": state, **query}
    page = await inbox_views.list_inbox(caller.scope, filters, cursor=cursor or None)
    here = {**query, **({"cursor": cursor} if cursor else {})}
    return _Listing(
        caller,
        {
            "rows": page.rows,
            "list_url": "/inbox/list" + (f"?{urlencode(here)}" if here else ""),
            "next_url": f"/inbox?{urlencode({**query, 'cursor': page.next_cursor})}"
            if page.next_cursor
            else None,
            "first_url": ("/inbox" + (f"?{urlencode(query)}" if query else "")) if cursor else None,
            "filters": {"state": state, "assignee": assignee, "channel": channel},
            "drill": drill,
        },
    )


Listing = Annotated[_Listing, Depends(_listing)]


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(request: Request, listing: Listing) -> HTMLResponse:
    caller = listing.caller
    return await render_page(
        request,
        "inbox.html",
        caller,
        {
            **listing.context,
            "state_labels": STATE_LABELS,
            "channel_labels": CHANNEL_LABELS,
            "repliers": await inbox_views.repliers(caller.scope),
        },
    )


@router.get("/inbox/list", response_class=HTMLResponse)
async def inbox_list(request: Request, listing: Listing) -> HTMLResponse:
    """The list alone, for the page to refresh itself when something changes."""
    return render(request, "inbox_list.html", listing.context, caller=listing.caller)


# --- Live updates ---------------------------------------------------------------------


@router.get("/inbox/events")
async def inbox_events(request: Request, caller: Reader) -> StreamingResponse:
    """Server-Sent Events: which conversation changed and how (ids and kinds only, never
    message text). The request's database session is closed before the stream starts."""
    hub: Hub = request.app.state.hub
    return StreamingResponse(
        _event_stream(request, hub, caller.principal.organisation_id),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


async def _event_stream(
    request: Request, hub: Hub, organisation_id: uuid.UUID
) -> AsyncIterator[str]:
    with hub.subscribe(organisation_id=organisation_id) as subscription:
        yield f"retry: {RETRY_MILLISECONDS}\n: connected\n\n"
        started = time.monotonic()
        next_keep_alive = started + KEEP_ALIVE_SECONDS
        # The stream also ends when the server stops: the browser reconnects elsewhere.
        while time.monotonic() - started < STREAM_SECONDS and not hub.closing:
            if await request.is_disconnected():
                return
            event = await subscription.next(POLL_SECONDS)
            if event is not None or subscription.overflowed:
                await asyncio.sleep(COALESCE_SECONDS)
                burst = [event, *subscription.pending()]
                resync = subscription.overflowed
                subscription.overflowed = False
                seen: dict[tuple[uuid.UUID, str], None] = {}
                for item in burst:
                    if item is None:
                        continue
                    seen[(item.conversation_id, item.kind)] = None
                chunks = [
                    "event: conversation\ndata: "
                    + json.dumps({"id": str(conversation_id), "kind": kind})
                    + "\n\n"
                    for conversation_id, kind in seen
                ]
                if resync:
                    chunks.append("event: resync\ndata: {}\n\n")
                if chunks:
                    yield "".join(chunks)
            if time.monotonic() >= next_keep_alive:
                next_keep_alive = time.monotonic() + KEEP_ALIVE_SECONDS
                yield ": keep-alive\n\n"


# --- One conversation -----------------------------------------------------------------


async def _conversation_page(
    request: Request,
    caller: Caller,
    conversation_id: uuid.UUID,
    *,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    can_reply = caller.principal.can(Permission.CONVERSATIONS_REPLY)
    view = await inbox_views.view_conversation(caller.scope, conversation_id)
    return await render_page(
        request,
        "conversation.html",
        caller,
        {
            "view": view,
            "conversation": view.conversation,
            "can_reply": can_reply,
            "repliers": await inbox_views.repliers(caller.scope) if can_reply else [],
            "waiting_message": has_waiting_message(view.messages),
            "max_reply": MAX_REPLY,
            "max_note": inbox.MAX_NOTE,
            "reply_text": "",
            "reply_error": None,
            "note_text": "",
            "note_error": None,
            **extra,
        },
        status_code=status_code,
    )


@router.get("/inbox/{conversation_id}", response_class=HTMLResponse)
async def conversation_page(
    request: Request, conversation_id: uuid.UUID, caller: Reader
) -> HTMLResponse:
    if caller.principal.can(Permission.CONVERSATIONS_REPLY):
        await inbox.mark_read(caller.scope, conversation_id)
    return await _conversation_page(request, caller, conversation_id)


@router.get("/inbox/{conversation_id}/thread", response_class=HTMLResponse)
async def conversation_thread(
    request: Request, conversation_id: uuid.UUID, caller: Reader
) -> HTMLResponse:
    """The history alone, for the open page to refresh when something changes (the page
    is open, so what arrives is read)."""
    if caller.principal.can(Permission.CONVERSATIONS_REPLY):
        await inbox.mark_read(caller.scope, conversation_id)
    view = await inbox_views.view_conversation(caller.scope, conversation_id)
    return render(
        request,
        "conversation_thread.html",
        {"view": view, "conversation": view.conversation},
        caller=caller,
    )


def _readable(error: CybergineError) -> str:
    if error.detail == service.WINDOW_CLOSED_NEEDS_TEMPLATE:
        return WINDOW_CLOSED
    return error.detail


def _back(conversation_id: uuid.UUID, notice: str) -> Response:
    return redirect(f"/inbox/{conversation_id}", notice=notice)


@router.post("/inbox/{conversation_id}/reply")
async def reply(request: Request, conversation_id: uuid.UUID, caller: Replier) -> Response:
    text = ""
    try:
        async with caller.session.begin_nested():
            form = await request.form()
            raw = form.get("text")
            text = raw if isinstance(raw, str) else ""
            await service.send_agent_message(
                caller.scope, caller.principal, conversation_id, text=text, template=None
            )
    except CybergineError as exc:
        if exc.status == 404:
            raise
        return await _conversation_page(
            request,
            caller,
            conversation_id,
            reply_text=text,
            reply_error=_readable(exc),
            status_code=exc.status,
        )
    return _back(conversation_id, "reply-sent")


@router.post("/inbox/{conversation_id}/notes")
async def add_note(request: Request, conversation_id: uuid.UUID, caller: Replier) -> Response:
    text = ""
    try:
        async with caller.session.begin_nested():
            form = await request.form()
            raw = form.get("text")
            text = raw if isinstance(raw, str) else ""
            await inbox.add_note(caller.scope, caller.principal, conversation_id, text)
    except CybergineError as exc:
        if exc.status == 404:
            raise
        return await _conversation_page(
            request,
            caller,
            conversation_id,
            note_text=text,
            note_error=exc.detail,
            status_code=exc.status,
        )
    return _back(conversation_id, "note-added")


@router.post("/inbox/{conversation_id}/assign")
async def assign(request: Request, conversation_id: uuid.UUID, caller: Replier) -> Response:
    try:
        async with caller.session.begin_nested():
            form = await request.form()
            raw = form.get("user_id")
            value = raw.strip() if isinstance(raw, str) else ""
            try:
                user_id = uuid.UUID(value) if value else None
            except ValueError as exc:
                raise InvalidInput("Choose one of the people offered.", field="user_id") from exc
            await inbox.assign(caller.scope, caller.principal, conversation_id, user_id)
    except CybergineError as exc:
        if exc.status == 404:
            raise
        return await _conversation_page(
            request, caller, conversation_id, error=exc.detail, status_code=exc.status
        )
    return _back(conversation_id, "assigned")


async def _act(
    request: Request,
    caller: Caller,
    conversation_id: uuid.UUID,
    action: Callable[[TenantScope, Principal, uuid.UUID], Awaitable[Conversation]],
    notice: str,
) -> Response:
    try:
        async with caller.session.begin_nested():
            await action(caller.scope, caller.principal, conversation_id)
    except CybergineError as exc:
        if exc.status == 404:
            raise
        return await _conversation_page(
            request, caller, conversation_id, error=exc.detail, status_code=exc.status
        )
    return _back(conversation_id, notice)


@router.post("/inbox/{conversation_id}/take-over")
async def take_over(request: Request, conversation_id: uuid.UUID, caller: Replier) -> Response:
    return await _act(request, caller, conversation_id, inbox.take_over, "taken-over")


@router.post("/inbox/{conversation_id}/hand-back")
async def hand_back(request: Request, conversation_id: uuid.UUID, caller: Replier) -> Response:
    form = await request.form()
    raw = form.get("waiting_message")
    chosen = raw if isinstance(raw, str) and raw else WaitingMessage.ASSISTANT_ANSWERS.value

    async def hand_back_as_chosen(
        scope: TenantScope, principal: Principal, conversation_id: uuid.UUID
    ) -> Conversation:
        try:
            waiting = WaitingMessage(chosen)
        except ValueError as exc:
            raise InvalidInput(
                "Choose who answers the customer's waiting message.", field="waiting_message"
            ) from exc
        return await inbox.hand_back(scope, principal, conversation_id, waiting)

    return await _act(request, caller, conversation_id, hand_back_as_chosen, "handed-back")


@router.post("/inbox/{conversation_id}/close")
async def close(request: Request, conversation_id: uuid.UUID, caller: Replier) -> Response:
    return await _act(request, caller, conversation_id, inbox.close, "closed")
