"""One LISTEN connection per web process, fanning conversation events out to the
sockets and streams this process holds.

Subscribers register for one conversation (a widget visitor) or one organisation (an
agent's inbox) and receive :class:`~cybergine.realtime.events.Event` values through a
small queue. An event is a wake-up call, not the data: the subscriber reads what is new
after its own cursor from the database, so a slow subscriber whose queue overflows loses
nothing (it is told to re-read), and a reconnecting client resumes from its cursor.

If the LISTEN connection drops, the hub reconnects with backoff and wakes every
subscriber once, since events may have been missed in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

import psycopg
import structlog

from cybergine.db.urls import libpq_url
from cybergine.realtime.events import CHANNEL, Event

log = structlog.get_logger(__name__)

QUEUE_SIZE = 64


class Subscription:
    """What one socket or stream waits on. ``overflowed`` is set when events were
    dropped: the holder must re-read everything after its cursor."""

    def __init__(
        self,
        hub: Hub,
        *,
        conversation_id: uuid.UUID | None = None,
        organisation_id: uuid.UUID | None = None,
        customer_id: uuid.UUID | None = None,
    ) -> None:
        self._hub = hub
        self.conversation_id = conversation_id
        self.organisation_id = organisation_id
        self.customer_id = customer_id
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False

    def deliver(self, event: Event | None) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True

    async def next(self, wait_seconds: float | None = None) -> Event | None:
        """The next event; None after ``wait_seconds``, or when events may have been
        missed (the hub reconnected) — either way, re-read from the database. None at
        once while the hub is closing (the server is stopping): answer and end."""
        if self._hub.closing and self._queue.empty():
            return None
        if wait_seconds is None:
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), wait_seconds)
        except TimeoutError:
            return None

    def pending(self) -> list[Event | None]:
        """Events already queued, without waiting (coalescing a burst)."""
        events = []
        while not self._queue.empty():
            events.append(self._queue.get_nowait())
        return events

    def close(self) -> None:
        self._hub._remove(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Hub:
    def __init__(self, database_url: str) -> None:
        self._conninfo = libpq_url(database_url)
        self._by_conversation: dict[uuid.UUID, set[Subscription]] = defaultdict(set)
        self._by_organisation: dict[uuid.UUID, set[Subscription]] = defaultdict(set)
        self._by_customer: dict[uuid.UUID, set[Subscription]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        # Set once the first LISTEN is in place, or has failed (see start).
        self._first_try = asyncio.Event()
        self.delivered = 0
        self.closing = False

    @property
    def subscribers(self) -> int:
        return sum(len(s) for index in self._indexes() for s in index.values())

    def _indexes(self) -> tuple[dict[uuid.UUID, set[Subscription]], ...]:
        return (self._by_conversation, self._by_organisation, self._by_customer)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="realtime-hub")
        # Wait (briefly) for LISTEN, so an event committed right after start is not missed.
        # A database that refuses the first try is not waited for: nothing is committed
        # while it is away, the process starts (its /readyz says why it is not ready) and
        # LISTEN follows as soon as the database answers.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_try.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def close_waiters(self) -> None:
        """The server stops accepting: every waiter is woken, and none waits again."""
        self.closing = True
        self._wake_all()

    def subscribe(
        self,
        *,
        conversation_id: uuid.UUID | None = None,
        organisation_id: uuid.UUID | None = None,
        customer_id: uuid.UUID | None = None,
    ) -> Subscription:
        """One of: a conversation, an organisation (an inbox), a customer (a widget
        visitor, whose conversation may not exist yet)."""
        keys = [k for k in (conversation_id, organisation_id, customer_id) if k is not None]
        if len(keys) != 1:
            raise ValueError("subscribe to one conversation, organisation or customer")
        subscription = Subscription(
            self,
            conversation_id=conversation_id,
            organisation_id=organisation_id,
            customer_id=customer_id,
        )
        for index, key in self._keys(subscription):
            index[key].add(subscription)
        return subscription

    def _keys(
        self, subscription: Subscription
    ) -> list[tuple[dict[uuid.UUID, set[Subscription]], uuid.UUID]]:
        pairs = (
            (self._by_conversation, subscription.conversation_id),
            (self._by_organisation, subscription.organisation_id),
            (self._by_customer, subscription.customer_id),
        )
        return [(index, key) for index, key in pairs if key is not None]

    def _remove(self, subscription: Subscription) -> None:
        for index, key in self._keys(subscription):
            if key in index:
                index[key].discard(subscription)
                if not index[key]:
                    del index[key]

    def dispatch(self, event: Event) -> None:
        customers = (
            self._by_customer.get(event.customer_id, ()) if event.customer_id is not None else ()
        )
        for subscription in (
            *self._by_conversation.get(event.conversation_id, ()),
            *self._by_organisation.get(event.organisation_id, ()),
            *customers,
        ):
            subscription.deliver(event)
            self.delivered += 1

    def _wake_all(self) -> None:
        for index in self._indexes():
            for subscriptions in index.values():
                for subscription in subscriptions:
                    subscription.deliver(None)

    async def _listen_forever(self) -> None:
        delay = 0.5
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self._first_try.set()
                    if not first:
                        self._wake_all()  # events may have been missed while away
                    first, delay = False, 0.5
                    async for notify in self._notifies(connection):
                        try:
                            self.dispatch(Event.decode(notify))
                        except (ValueError, KeyError):
                            log.warning("realtime.bad_payload")
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database restarts, the network drops
                log.warning("realtime.listen_failed", error=str(error), retry_in=delay)
                self._first_try.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)

    @staticmethod
    async def _notifies(connection: psycopg.AsyncConnection[object]) -> AsyncIterator[str]:
        async for notify in connection.notifies():
            yield notify.payload
