"""/api/v1/conversations: conversations, their messages and attachments, and agents' messages
to customers."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response

from cybergine.accounts.auth import Authorized, Caller, authorize, authorize_outside_transaction
from cybergine.accounts.permissions import Permission
from cybergine.analytics import gaps
from cybergine.analytics import service as analytics
from cybergine.analytics.definitions import Figure
from cybergine.analytics.periods import Filters, period
from cybergine.conversations import preview, queries, service
from cybergine.conversations.models import Channel, ConversationState
from cybergine.conversations.schemas import (
    ConversationOut,
    ConversationPage,
    MessageIn,
    MessageOut,
    MessagePage,
    PreviewIn,
    PreviewOut,
)
from cybergine.errors import Conflict, InvalidInput, NotFound
from cybergine.knowledge.providers import embedding_provider
from cybergine.onboarding.service import record_tried
from cybergine.web.deps import SettingsDep
from cybergine.web.downloads import content_disposition
from cybergine.web.openapi import may_answer

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])
# The assistant's test chat is a conversation that is never stored: it lives here, with
# the reply pipeline it runs, under the assistant's path.
preview_router = APIRouter(prefix="/api/v1/assistants", tags=["assistants"])

Reader = Annotated[Caller, authorize(Permission.CONVERSATIONS_READ)]
Replier = Annotated[Caller, authorize(Permission.CONVERSATIONS_REPLY)]
# Configuring, not reading: a test question may spend the organisation's model tokens
# and sends its knowledge to the model's provider, as a customer's would. The caller is
# checked in a short transaction; the model is asked with no connection held.
Tester = Annotated[Authorized, authorize_outside_transaction(Permission.CONFIGURATION_MANAGE)]


# Served with their own type (so a browser can show them); anything else is a download.
# SVG is an image that can carry scripts, so it is a download too.
_INLINE_TYPES = ("image/", "audio/", "video/")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


@router.get("", response_model=ConversationPage, responses=may_answer(NotFound))
async def list_conversations(
    caller: Reader,
    state: ConversationState | None = None,
    channel: Channel | None = None,
    assistant_id: uuid.UUID | None = None,
    human_review: bool | None = None,
    analytics_figure: Annotated[
        Figure | None,
        Query(
            alias="analytics",
            description="Only the conversations this analytics figure counts (with from, "
            "to and timezone, as /api/v1/analytics/summary's drilldown links give them)",
        ),
    ] = None,
    knowledge_gap: Annotated[
        uuid.UUID | None,
        Query(
            description="Only the conversations behind this knowledge gap's questions (with "
            "from, to and timezone, as /api/v1/analytics/knowledge-gaps links give them)"
        ),
    ] = None,
    top_question: Annotated[
        uuid.UUID | None,
        Query(
            description="Only the conversations behind this top question's questions (with "
            "from, to and timezone, as /api/v1/analytics/top-questions links give them)"
        ),
    ] = None,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
    timezone: Annotated[str, Query(max_length=64)] = "UTC",
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = queries.DEFAULT_CONVERSATION_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=500, description="next_cursor of the last page")
    ] = None,
) -> ConversationPage:
    among = None
    if analytics_figure is not None:
        if first is None or last is None:
            raise InvalidInput("An analytics figure needs its period: from and to.", field="from")
        filters = Filters(period(first, last, timezone), assistant_id, channel)
        await analytics.check_filters(caller.scope, filters)
        among = analytics.figure_conversations(
            caller.principal.organisation_id, analytics_figure, filters
        )
    for group, causes, field, what in (
        (knowledge_gap, gaps.GAP_CAUSES, "knowledge_gap", "A knowledge gap"),
        (top_question, gaps.CAUSES, "top_question", "A top question"),
    ):
        if group is None:
            continue
        if first is None or last is None or among is not None:
            raise InvalidInput(
                f"{what} needs its period (from and to), and no other analytics figure.",
                field=field,
            )
        filters = Filters(period(first, last, timezone), assistant_id, channel)
        await analytics.check_filters(caller.scope, filters)
        among = gaps.group_conversations(caller.principal.organisation_id, group, filters, causes)
    page = await queries.list_conversations(
        caller.scope,
        state=state,
        channel=channel,
        assistant_id=assistant_id,
        human_review=human_review,
        among=among,
        limit=limit,
        cursor=cursor,
    )
    return ConversationPage(
        items=[ConversationOut.of(c, page.customers[c.customer_id]) for c in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/{conversation_id}", response_model=ConversationOut)
async def get_conversation(conversation_id: uuid.UUID, caller: Reader) -> ConversationOut:
    conversation, customer = await queries.get_conversation(caller.scope, conversation_id)
    return ConversationOut.of(conversation, customer)


@router.get("/{conversation_id}/messages", response_model=MessagePage)
async def list_messages(
    conversation_id: uuid.UUID,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = queries.DEFAULT_MESSAGE_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=500, description="next_cursor of the last page")
    ] = None,
) -> MessagePage:
    page = await queries.list_messages(caller.scope, conversation_id, limit=limit, cursor=cursor)
    return MessagePage(
        items=[MessageOut.of(m, page.attachments.get(m.id)) for m in page.items],
        next_cursor=page.next_cursor,
    )


def _media_type(declared: str | None) -> str | None:
    """The declared type when it may be shown inline, else None (a download)."""
    value = (declared or "").split(";", 1)[0].strip().lower()
    if not _MEDIA_TYPE.fullmatch(value) or "svg" in value:
        return None
    return value if value.startswith(_INLINE_TYPES) else None


@router.get(
    "/{conversation_id}/messages/{message_id}/attachment",
    summary="Download the file a customer sent with a message",
    # Images, sound and video are served as what they are; anything else as bytes.
    responses={
        200: {
            "content": {
                **{f"{kind}*": {} for kind in _INLINE_TYPES},
                "application/octet-stream": {},
            }
        }
    },
)
async def download_attachment(
    conversation_id: uuid.UUID, message_id: uuid.UUID, caller: Reader
) -> Response:
    stored = await queries.get_attachment_file(caller.scope, conversation_id, message_id)
    media_type = _media_type(stored.mime_type)
    return Response(
        content=stored.data,
        media_type=media_type or "application/octet-stream",
        headers={
            "content-disposition": content_disposition(
                "inline" if media_type else "attachment", stored.filename, unnamed="attachment"
            ),
            # Customers' files are personal data: no shared or browser cache keeps them.
            "cache-control": "private, no-store",
        },
    )


@router.post(
    "/{conversation_id}/messages",
    response_model=MessageOut,
    status_code=202,
    summary="Send a message to the customer as an agent (takes the conversation over)",
    responses=may_answer(Conflict),
)
async def send_message(conversation_id: uuid.UUID, body: MessageIn, caller: Replier) -> MessageOut:
    message = await service.send_agent_message(
        caller.scope,
        caller.principal,
        conversation_id,
        text=body.text,
        template=body.template.model_dump(exclude_none=True) if body.template else None,
    )
    return MessageOut.of(message, None)


@preview_router.post(
    "/{assistant_id}/preview",
    response_model=PreviewOut,
    summary="Ask the assistant a test question: the real answer and why, nothing stored",
)
async def preview_assistant(
    assistant_id: uuid.UUID, body: PreviewIn, tester: Tester, settings: SettingsDep
) -> PreviewOut:
    result = await preview.preview_reply(
        tester.database,
        tester.principal.organisation_id,
        assistant_id,
        text=body.text,
        history=[(turn.role, turn.text) for turn in body.history],
        settings=settings,
        embeddings=embedding_provider(settings),
    )
    await record_tried(tester.database, tester.principal, assistant_id)  # the checklist's step
    return PreviewOut.of(result)
