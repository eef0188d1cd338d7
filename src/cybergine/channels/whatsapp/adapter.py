"""WhatsApp, as the conversation core uses it (``conversations.channel.ChannelAdapter``):
the 24-hour customer-service window, read receipts with a typing indicator, the delivery
job that sends through the Graph API at the number's send rate, the job that fetches a
customer's media, and messages rendered as Graph API request bodies."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.channels.whatsapp import delivery
from cybergine.channels.whatsapp.graph import GraphError
from cybergine.channels.whatsapp.retries import SEND_RETRY
from cybergine.channels.whatsapp.window import SERVICE_WINDOW, window_open
from cybergine.conversations.channel import Claimed, Inbound, RichContent
from cybergine.conversations.locks import send_lock
from cybergine.conversations.models import Channel
from cybergine.db.engine import Database
from cybergine.job_names import JobName
from cybergine.queue import RetryLater, defer
from cybergine.realtime.events import Event
from cybergine.settings import Settings

log = structlog.get_logger(__name__)


class WhatsAppAdapter:
    channel = Channel.WHATSAPP
    delivers_by_storing = False
    free_form_window: timedelta | None = SERVICE_WINDOW
    delivery_job: str | None = JobName.SEND_WHATSAPP_MESSAGE.value
    shows_sources_apart = False

    def may_send_free_form(
        self, last_inbound_at: datetime | None, *, now: datetime | None = None
    ) -> bool:
        return window_open(last_inbound_at, now=now)

    async def acknowledge(
        self, session: AsyncSession, inbound: Inbound, settings: Settings
    ) -> asyncio.Task[bool] | None:
        if inbound.address is None or not inbound.address.active:
            return None
        # Blue ticks and "typing…" on the customer's phone while the answer is prepared
        # (Meta: show it only when a reply will follow; one will).
        return asyncio.create_task(_mark_read(inbound, settings))

    def typing_ended(self, inbound: Inbound) -> Event | None:
        return None  # WhatsApp's indicator ends with the reply, or by itself after 25 s

    async def deliver(
        self,
        session: AsyncSession,
        conversation_id: uuid.UUID,
        message_id: uuid.UUID,
        *,
        schedule_at: datetime | None = None,
    ) -> None:
        # Sends of one conversation go one at a time, in order, under their own lock:
        # under the conversation's lock a send deferred by a running reply job would wait
        # for that job to end and then for the next poll.
        await defer(
            session,
            JobName.SEND_WHATSAPP_MESSAGE,
            lock=send_lock(conversation_id),
            schedule_at=schedule_at,
            message_id=str(message_id),
        )

    async def send_claimed(self, database: Database, settings: Settings, claimed: Claimed) -> None:
        claim = delivery.Claim(
            number_id=claimed.account_row_id,
            phone_number_id=claimed.address.account_id,
            access_token=claimed.address.credential,
            send_rate=claimed.send_rate,
            bodies=self.render(claimed.content),
            parts_sent=0,
            mark_read=None,
            first_slot_wait=claimed.slot_wait,
        )
        graph = delivery.graph_client(settings.whatsapp_graph_url)
        try:
            await delivery.deliver(database, graph, claimed.message_id, claim, last_attempt=False)
        except RetryLater as later:
            # Meta is throttling: the delivery job retries from here, after the delay its
            # own first retry would have waited.
            delay = max(SEND_RETRY.delay_for(0), min(later.seconds or 0, SEND_RETRY.cap_seconds))
            when = datetime.now(UTC) + timedelta(seconds=delay)
            async with database.transaction() as session:
                await self.deliver(
                    session, claimed.conversation_id, claimed.message_id, schedule_at=when
                )

    async def fetch_media(self, session: AsyncSession, attachment_id: uuid.UUID) -> None:
        await defer(session, JobName.FETCH_WHATSAPP_MEDIA, attachment_id=str(attachment_id))

    def unnamed_customer_label(self, external_id: str) -> str:
        return external_id  # the wa_id is the number, without its "+"

    def render(self, content: RichContent) -> list[dict[str, Any]]:
        return delivery.bodies_of(
            content.message_id,
            content.type,
            content.text,
            dict(content.payload) if content.payload is not None else None,
            to=content.to,
        )


async def _mark_read(inbound: Inbound, settings: Settings) -> bool:
    if not inbound.external_id or inbound.address is None:
        return False
    graph = delivery.graph_client(settings.whatsapp_graph_url)
    try:
        await graph.mark_read(
            inbound.address.account_id,
            inbound.address.credential,
            inbound.external_id,
            typing_indicator=True,
        )
    except GraphError as error:  # a missing blue tick is not worth a failed reply
        log.info("whatsapp.mark_read_failed", error=str(error))
        return False
    return True
