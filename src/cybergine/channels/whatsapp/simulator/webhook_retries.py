"""How the simulator delivers the webhooks it sends by itself (message statuses), as Meta
does: an answer other than 2xx, or none, is tried again "with decreasing frequency until
the request succeeds, for up to 7 days" (Meta's webhook documentation). Meta publishes no
intervals; ``META_RETRIES`` doubles the wait from a second up to an hour between tries,
so a receiver that is down for minutes gets its webhooks late, not never, as in
production. Every try carries the same body and signature: a receiver sees duplicates.

A delivery still being tried when the simulator stops is recorded as not delivered, with
the tries it had (``WebhookDelivery.attempts``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from cybergine.channels.whatsapp.simulator.records import WebhookDelivery

STOPPED = "the simulator stopped before a try succeeded"


@dataclass(frozen=True)
class WebhookRetries:
    """The waits between tries: ``first_seconds``, doubling up to ``longest_seconds``,
    until ``for_seconds`` have been waited in all (then the delivery is given up)."""

    first_seconds: float = 1.0
    longest_seconds: float = 3600.0
    for_seconds: float = 7 * 24 * 3600.0

    def waits(self) -> Iterator[float]:
        waited, wait = 0.0, self.first_seconds
        while waited + wait <= self.for_seconds:
            yield wait
            waited += wait
            wait = min(wait * 2, self.longest_seconds)


META_RETRIES = WebhookRetries()


class Deliveries:
    """Deliveries under way, each a task of its own (its retries may last days); ``stop``
    cancels them, so each records itself as not delivered (``post_until_delivered``)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, delivery: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(delivery)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def post_until_delivered(
    client: aiohttp.ClientSession,
    url: str,
    raw: bytes,
    headers: Mapping[str, str],
    retries: WebhookRetries,
    record: Callable[[WebhookDelivery], None],
) -> bool:
    """POSTs ``raw`` to ``url`` until it is answered 2xx or ``retries`` run out, and
    ``record``s how it ended; whether it was delivered. Cancelled (the simulator stopping),
    it records that too, then lets the cancellation through."""
    status: int | None = None
    error: str | None = None
    attempts = 0
    first: tuple[float, float | None, int | None] = (time.monotonic(), None, None)
    waits = retries.waits()
    try:
        while True:
            attempts += 1
            try:
                async with client.post(url, data=raw, headers=dict(headers)) as response:
                    status, error = response.status, None
                    if 200 <= status < 300:
                        break
                    error = (await response.read()).decode("utf-8", "replace")[:200]
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            finally:
                if attempts == 1:
                    first = (first[0], time.monotonic() - first[0], status)
            wait = next(waits, None)
            if wait is None:
                break
            await asyncio.sleep(wait)
    except asyncio.CancelledError:
        record(WebhookDelivery(url, raw, None, STOPPED, attempts, *first))
        raise
    delivery = WebhookDelivery(url, raw, status, error, attempts, *first)
    record(delivery)
    return delivery.ok
