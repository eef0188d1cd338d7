"""The widget's rate limits hold across web processes: two apps on one database (as two
web hosts behind a load balancer) allow a visitor the limit once, not once each; and a
visitor's erasure takes their counters with it."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select

from cybergine.app import create_app
from cybergine.channels.webchat.api import PER_ADDRESS, PER_VISITOR, SESSIONS_PER_ADDRESS
from cybergine.channels.webchat.visitors import parse
from cybergine.db.engine import Database
from cybergine.ratelimits import limiter
from cybergine.ratelimits.models import RateCounter
from cybergine.settings import Settings
from tests.support.factories import make_organisation_with_key
from tests.support.server import LiveServer

SHOP = "https://shop.example"


async def test_two_web_processes_share_one_limit_and_erasure_takes_the_counters(
    database: Database, settings: Settings
) -> None:
    _, key = await make_organisation_with_key(database)
    with (
        LiveServer(create_app(settings, run_worker=False)) as first,
        LiveServer(create_app(settings, run_worker=False)) as second,
        first.client(headers={"authorization": f"Bearer {key}"}) as api,
        first.client() as one,
        second.client() as other,
    ):
        created = api.post("/api/v1/assistants", json={"name": "Mia", "allowed_origins": [SHOP]})
        assert created.status_code == 201, created.text
        session = one.post(
            "/widget/v1/session",
            json={"widget_key": created.json()["widget_key"]},
            headers={"Origin": SHOP},
        )
        token = session.json()["visitor_token"]
        headers = {"Origin": SHOP, "Authorization": f"Bearer {token}"}

        def say(http_client: httpx.Client, n: int) -> int:
            response = http_client.post(
                "/widget/v1/messages",
                json={"text": f"message {n}", "client_id": uuid.uuid4().hex},
                headers=headers,
            )
            return int(response.status_code)

        statuses = [say(one if n % 2 else other, n) for n in range(PER_VISITOR.maximum)]
        assert statuses == [202] * PER_VISITOR.maximum
        assert say(one, 99) == 429
        assert say(other, 100) == 429

        parsed = parse(token)
        assert parsed is not None
        customer_id = parsed[0].customer_id
        async with database.transaction() as db:
            mine = select(func.count()).where(
                RateCounter.key_hash == limiter.customer_key(customer_id)
            )
            assert await db.scalar(mine) >= 1  # two if the messages straddled a window
        erased = api.delete(f"/api/v1/customers/{customer_id}")
        assert erased.status_code in (200, 202, 204), erased.text
        async with database.transaction() as db:
            assert await db.scalar(mine) == 0
            # The address's counters name no customer, and stay until they are pruned.
            left = set((await db.execute(select(RateCounter.purpose))).scalars())
            assert left == {PER_ADDRESS.purpose, SESSIONS_PER_ADDRESS.purpose}
