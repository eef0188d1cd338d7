"""What the conversation core needs from a channel, and where it finds each channel's adapter.

The protocol lives here, on the side that depends on it: ``conversations`` says what it
asks of a channel (may a free-form message go now, acknowledge a customer's message,
deliver a stored one, fetch inbound media, render rich content), and each channel
package implements it (``channels.whatsapp.adapter``, ``channels.webchat.adapter``). So
``conversations`` imports no channel module: the composition root (``cybergine.jobs``,
which every process that runs or defers jobs imports, and ``cybergine.app``) registers
the adapters with :func:`register`, and the core looks them up by :class:`Channel`.

A channel's own rules stay in its adapter: WhatsApp's 24-hour customer-service window,
its read receipts and typing indicator, its delivery job and send rate; web chat's
delivery by storing and its typing events.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.conversations.models import Channel
from cybergine.db.engine import Database
from cybergine.realtime.events import Event
from cybergine.settings import Settings


@dataclass(frozen=True)
class Address:
    """Where a conversation's messages leave from and go to on its channel: the account
    (WhatsApp: the Graph phone number id and its access token; ``active`` while it is
    connected) and the customer's id there (WhatsApp: the wa_id)."""

    account_id: str
    credential: str
    customer_external_id: str
    active: bool


@dataclass(frozen=True)
class Inbound:
    """A customer's message the assistant is about to answer, as its channel knows it."""

    organisation_id: uuid.UUID
    conversation_id: uuid.UUID
    customer_id: uuid.UUID
    external_id: str | None  # the channel's own id of the message (a read receipt's target)
    address: Address | None  # None on a channel without accounts (web chat)


@dataclass(frozen=True)
class RichContent:
    """A message as stored, for a channel to render in its own form. ``payload`` holds
    the rich parts: ``buttons`` ([{"id", "title"}]), ``list`` ({"button", "sections":
    [{"title", "rows": [{"id", "title", "description"?}]}]}), ``template``, and
    ``products`` (product cards, read through ``conversations.product_cards``)."""

    message_id: uuid.UUID
    type: str
    text: str | None
    payload: Mapping[str, Any] | None
    to: str  # the customer's id on the channel


@dataclass(frozen=True)
class Claimed:
    """An answer the reply write claimed for sending at once (``sending``), with the
    send slot it took on the account's rate limit."""

    message_id: uuid.UUID
    conversation_id: uuid.UUID
    account_row_id: uuid.UUID  # WhatsApp: the ``whatsapp_numbers`` row
    address: Address
    send_rate: float
    slot_wait: float | None
    content: RichContent


class ChannelAdapter(Protocol):
    """One channel, as the conversation core uses it."""

    channel: Channel
    # Stored outbound messages are delivered by being stored (the visitor's socket reads
    # them): they are written ``sent`` at once, and :meth:`deliver` has nothing to do.
    delivers_by_storing: bool
    # How long after the customer's last message free-form messages may go (None: always).
    free_form_window: timedelta | None
    # The name of the job that sends a queued message (None: nothing to send).
    delivery_job: str | None
    # An answer's sources are shown apart from its text (the widget lists them under
    # it); otherwise they are written into the text, as a footer.
    shows_sources_apart: bool

    def may_send_free_form(
        self, last_inbound_at: datetime | None, *, now: datetime | None = None
    ) -> bool:
        """Whether a message that is not an approved template may go now."""
        ...

    async def acknowledge(
        self, session: AsyncSession, inbound: Inbound, settings: Settings
    ) -> asyncio.Task[bool] | None:
        """Show the customer their message was seen and an answer is coming (a read
        receipt with a typing indicator, or a typing event). A read receipt runs as a
        task while the answer is made; its result says whether the message was marked
        read. Events are published in ``session``."""
        ...

    def typing_ended(self, inbound: Inbound) -> Event | None:
        """The event that ends the typing indicator when no answer follows, if any."""
        ...

    async def deliver(
        self,
        session: AsyncSession,
        conversation_id: uuid.UUID,
        message_id: uuid.UUID,
        *,
        schedule_at: datetime | None = None,
    ) -> None:
        """Defer, in ``session``'s transaction, the job that sends a queued message."""
        ...

    async def send_claimed(self, database: Database, settings: Settings, claimed: Claimed) -> None:
        """Send an answer the reply write claimed; when the channel asks to wait, hand it
        to the delivery job instead."""
        ...

    async def fetch_media(self, session: AsyncSession, attachment_id: uuid.UUID) -> None:
        """Defer, in ``session``'s transaction, the job that fetches an inbound attachment."""
        ...

    def unnamed_customer_label(self, external_id: str) -> str:
        """How the team calls a customer who gave neither a name nor a number, by their
        id on the channel (WhatsApp: the wa_id; web chat: the visitor)."""
        ...

    def render(self, content: RichContent) -> list[dict[str, Any]]:
        """``content`` in the channel's own form, in sending order (WhatsApp: the Graph
        API request bodies; web chat: what the widget shows)."""
        ...


_ADAPTERS: dict[Channel, ChannelAdapter] = {}


def register(adapter: ChannelAdapter) -> None:
    """Make ``adapter`` the one for its channel (the composition root calls this)."""
    _ADAPTERS[adapter.channel] = adapter


def adapter_for(channel: Channel) -> ChannelAdapter:
    try:
        return _ADAPTERS[channel]
    except KeyError:
        raise LookupError(
            f"no adapter registered for the {channel.value} channel: the composition root "
            "(cybergine.jobs) registers them"
        ) from None


def may_send_free_form(
    channel: Channel, last_inbound_at: datetime | None, *, now: datetime | None = None
) -> bool:
    """Whether ``channel`` lets a free-form message through now (its adapter decides)."""
    return adapter_for(channel).may_send_free_form(last_inbound_at, now=now)
