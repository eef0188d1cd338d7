"""The Graph API simulator delivers status webhooks as Meta does: a receiver that fails is
tried again, less and less often, for up to 7 days, with the same signed body each time;
the simulator stopping records what it was still trying as not delivered."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request, Response

from cybergine.channels.whatsapp.graph import GraphClient
from cybergine.channels.whatsapp.messages import text_body
from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.channels.whatsapp.simulator.webhook_retries import (
    META_RETRIES,
    STOPPED,
    WebhookRetries,
)
from tests.support.server import LiveServer

PHONE_ID = "106540352242922"
TOKEN = "EAAGtest-access-token-0123456789abcdef"
CUSTOMER = "16315551181"
FAST = WebhookRetries(first_seconds=0.05, longest_seconds=0.2, for_seconds=10)


class FailingReceiver:
    """A webhook endpoint that answers 503 to its first ``failures`` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.lock = threading.Lock()
        self.bodies: list[tuple[bytes, str]] = []
        self.app = FastAPI()
        self.app.add_api_route("/webhook", self.hook, methods=["POST"])

    async def hook(self, request: Request) -> Response:
        with self.lock:
            self.bodies.append(
                (await request.body(), request.headers.get("x-hub-signature-256", ""))
            )
            failing = len(self.bodies) <= self.failures
        return Response(status_code=503 if failing else 200)

    def seen(self) -> int:
        with self.lock:
            return len(self.bodies)


@pytest.fixture
def receiver_url() -> Iterator[tuple[FailingReceiver, str]]:
    receiver = FailingReceiver(failures=3)
    with LiveServer(receiver.app) as server:
        yield receiver, f"{server.url}/webhook"


async def _until(predicate: object, what: str) -> None:
    assert callable(predicate)
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(what)


def test_the_waits_grow_to_the_longest_and_stop_within_the_period() -> None:
    assert list(WebhookRetries(1, 4, 20).waits()) == [1, 2, 4, 4, 4, 4]
    waits = list(META_RETRIES.waits())
    assert waits[0] == 1.0
    assert waits == sorted(waits)  # less and less often
    assert max(waits) == 3600.0
    assert 6 * 24 * 3600 < sum(waits) <= 7 * 24 * 3600


async def test_a_failing_receiver_gets_the_same_signed_status_until_it_answers(
    receiver_url: tuple[FailingReceiver, str],
) -> None:
    receiver, url = receiver_url
    with GraphSimulator(webhook_url=url, app_secret="s3cret", webhook_retries=FAST) as sim:
        sim.add_number(PHONE_ID, TOKEN)
        async with GraphClient(base_url=sim.base_url, timeout=5) as client:
            await client.send(PHONE_ID, TOKEN, text_body(CUSTOMER, "Your order shipped"))
        await _until(lambda: len(sim.webhook_deliveries) == 2, "both statuses delivered")
        sent, delivered = sim.webhook_deliveries
    assert (sent.ok, sent.attempts, delivered.ok, delivered.attempts) == (True, 4, True, 1)
    # The first try is timed, answered or not: the receiver's acknowledgement latency.
    assert sent.first_try_at is not None
    assert delivered.first_try_at is not None
    assert sent.first_try_at < delivered.first_try_at
    assert sent.first_try_seconds is not None
    assert 0 < sent.first_try_seconds < 5
    assert (sent.first_status, delivered.first_status) == (503, 200)
    # Four tries of "sent", byte for byte and signature for signature, then "delivered".
    assert len(set(receiver.bodies[:4])) == 1
    assert receiver.bodies[0][0] == sent.body
    assert receiver.bodies[4][0] == delivered.body


async def test_what_is_still_being_tried_when_the_simulator_stops_is_recorded_as_not_delivered(
    receiver_url: tuple[FailingReceiver, str],
) -> None:
    receiver, url = receiver_url
    receiver.failures = 1_000
    with GraphSimulator(webhook_url=url, app_secret="s3cret") as sim:  # Meta's schedule
        sim.add_number(PHONE_ID, TOKEN)
        async with GraphClient(base_url=sim.base_url, timeout=5) as client:
            await client.send(PHONE_ID, TOKEN, text_body(CUSTOMER, "Your order shipped"))
        await _until(lambda: receiver.seen() == 1, "the first try")
        assert sim.webhook_deliveries == []  # still being tried
    (stopped,) = sim.webhook_deliveries
    assert (stopped.ok, stopped.status_code, stopped.error) == (False, None, STOPPED)
    assert stopped.attempts in (1, 2)  # the second try comes a second after the first
