"""Web chat, as the conversation core uses it (``conversations.channel.ChannelAdapter``):
no window (a visitor may be written to at any time), delivery by storing (the visitor's
socket reads the stored message, so it is ``sent`` when written and no job sends it),
"typing…" as realtime events to the widget, and rich content in the widget's own form."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.conversations.channel import Claimed, Inbound, RichContent
from cybergine.conversations.models import Channel
from cybergine.conversations.product_cards import cards_of
from cybergine.db.engine import Database
from cybergine.realtime.events import Event, publish
from cybergine.settings import Settings


class WebChatAdapter:
    channel = Channel.WEBCHAT
    delivers_by_storing = True
    free_form_window: timedelta | None = None
    delivery_job: str | None = None
    shows_sources_apart = True

    def may_send_free_form(
        self, last_inbound_at: datetime | None, *, now: datetime | None = None
    ) -> bool:
        return True

    async def acknowledge(
        self, session: AsyncSession, inbound: Inbound, settings: Settings
    ) -> asyncio.Task[bool] | None:
        # The widget shows "typing…" until the answer arrives (the answer's own event
        # ends it; so does :meth:`typing_ended`'s event if no answer is written).
        await publish(session, _typing(inbound, on=True))
        return None

    def typing_ended(self, inbound: Inbound) -> Event | None:
        return _typing(inbound, on=False)

    async def deliver(
        self,
        session: AsyncSession,
        conversation_id: uuid.UUID,
        message_id: uuid.UUID,
        *,
        schedule_at: datetime | None = None,
    ) -> None:
        return None  # delivered by being stored

    async def send_claimed(self, database: Database, settings: Settings, claimed: Claimed) -> None:
        # The reply write claims only messages that leave through an account's send slot.
        raise ValueError("web chat messages are delivered by being stored, never claimed")

    async def fetch_media(self, session: AsyncSession, attachment_id: uuid.UUID) -> None:
        # The widget sends text and button taps only: no attachment is ever recorded.
        raise ValueError("web chat has no inbound media to fetch")

    def unnamed_customer_label(self, external_id: str) -> str:
        return f"Web visitor {external_id[:8]}"

    def render(self, content: RichContent) -> list[dict[str, Any]]:
        return [
            {
                "text": content.text or "",
                "buttons": buttons_of(content.payload),
                "products": [card.view() for card in cards_of(content.payload)],
            }
        ]


def buttons_of(payload: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """A message's reply buttons as the widget shows them (it shows up to ten). A list's
    rows (at most ten, as on WhatsApp) are buttons too: a tap answers with the row's id,
    as a WhatsApp customer's choice from the list does."""
    payload = payload or {}
    choices = payload.get("list")
    rows = (
        [row for section in choices.get("sections", []) for row in section.get("rows", [])]
        if isinstance(choices, dict)
        else []
    )
    return [
        {"id": str(b.get("id")), "title": str(b.get("title"))}
        for b in [*payload.get("buttons", []), *rows]
        if isinstance(b, dict)
    ]


def _typing(inbound: Inbound, *, on: bool) -> Event:
    return Event(
        inbound.organisation_id,
        inbound.conversation_id,
        "typing",
        customer_id=inbound.customer_id,
        data={"on": on},
    )
