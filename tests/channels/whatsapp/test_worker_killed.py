"""Zero lost and zero duplicated replies when the worker answering customers is killed
with SIGKILL mid-run and another one takes over."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from cybergine.conversations.models import Direction, Message, MessageStatus
from cybergine.settings import Settings
from tests.support.processes import CYBERGINE, clean_env, wait_until
from tests.support.whatsapp import Shop

pytestmark = pytest.mark.slow  # workers as processes, one killed mid-run

CUSTOMERS = [f"4477009{n:05d}" for n in range(40)]


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen([CYBERGINE, "worker"], env=env, stdout=handle, stderr=handle)


async def test_replies_survive_a_killed_worker_exactly_once(
    shop: Shop, settings: Settings, key_env: dict[str, str], tmp_path: Path
) -> None:
    assert settings.database_url is not None
    env = clean_env(
        CYBERGINE_DATABASE_URL=settings.database_url,
        CYBERGINE_DATA_DIR=str(tmp_path / "worker"),
        CYBERGINE_WHATSAPP_GRAPH_URL=settings.whatsapp_graph_url,
        CYBERGINE_WORKER_CONCURRENCY="4",
        CYBERGINE_WORKER_HEARTBEAT_SECONDS="0.5",
        CYBERGINE_WORKER_STALLED_AFTER_SECONDS="2",
        **key_env,
    )
    shop.graph.delay_seconds = 0.05  # sends take a while, so the kill lands among them
    for customer in CUSTOMERS:
        shop.says("What is your return policy?", wa_id=customer)

    log = tmp_path / "workers.log"
    first = _worker(env, log)
    try:
        wait_until(lambda: len(shop.graph.sent) >= 8, 90, "the first replies")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    interrupted = len(shop.graph.sent)
    assert interrupted < len(CUSTOMERS), "the worker finished before it was killed"

    second = _worker(env, log)
    try:
        wait_until(
            lambda: len({m.to for m in shop.graph.sent}) == len(CUSTOMERS),
            120,
            "every customer answered",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    per_customer = collections.Counter(m.to for m in shop.graph.sent)
    assert per_customer == dict.fromkeys(CUSTOMERS, 1), "a reply was sent twice"
    async with shop.database.transaction() as session:
        replies = list(
            (
                await session.execute(
                    select(Message).where(Message.direction == Direction.OUTBOUND)
                )
            ).scalars()
        )
    assert len(replies) == len(CUSTOMERS)
    assert all(
        r.status in (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)
        for r in replies
    )
    assert sorted(r.external_id for r in replies) == sorted(m.wamid for m in shop.graph.sent)
