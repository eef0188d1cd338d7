"""What anyone on the internet can post to ``/webhooks/whatsapp`` without Meta's app
secret: it costs a 4xx, never memory kept for good nor a 500."""

from __future__ import annotations

import copy
import json
import secrets
from typing import Any

import psutil
import pytest

from cybergine.bounded_cache import BoundedCache
from cybergine.channels.whatsapp.ingest import NumberDirectory
from cybergine.channels.whatsapp.simulator import inbound_webhook, webhook_request
from cybergine.conversations.models import Message
from cybergine.web.hygiene import MAX_JSON_DEPTH
from tests.support.server import LiveServer
from tests.support.whatsapp import Shop

CUSTOMER = "15550001111"
MiB = 1024 * 1024


def _naming(phone_number_ids: list[str]) -> dict[str, Any]:
    """One delivery with a change for each of these numbers."""
    body = inbound_webhook("1", CUSTOMER, "hello")
    template = body["entry"][0]["changes"][0]
    changes = []
    for phone_number_id in phone_number_ids:
        change = copy.deepcopy(template)
        change["value"]["metadata"]["phone_number_id"] = phone_number_id
        changes.append(change)
    body["entry"][0]["changes"] = changes
    return body


def _directory(live_server: LiveServer) -> NumberDirectory:
    directory: NumberDirectory = live_server.server.config.app.state.whatsapp_numbers
    return directory


async def test_forged_deliveries_naming_new_numbers_leave_no_memory_behind(
    shop: Shop, live_server: LiveServer
) -> None:
    shop.says("hello")  # a verified delivery: the shop's number is kept
    directory = _directory(live_server)
    assert len(directory) == 1

    def forged() -> int:
        # A number id of a megabyte (any length was kept), and many short new ones, and
        # the shop's own number: signed with a guessed secret.
        ids = ["9" * MiB + secrets.token_hex(8)]
        ids += [str(secrets.randbelow(10**15) + 10**15) for _ in range(200)]
        ids.append(shop.phone_number_id)
        raw, headers = webhook_request(_naming(ids), "a-guessed-secret")
        return shop.webhook.post("/webhooks/whatsapp", content=raw, headers=headers).status_code

    process = psutil.Process()
    assert {forged() for _ in range(10)} == {401}  # warm-up: buffers, pools
    before = process.memory_info().rss
    assert {forged() for _ in range(60)} == {401}
    grown = process.memory_info().rss - before

    assert len(directory) <= 1  # was: every id of every body, forever
    assert grown < 24 * MiB, f"RSS grew by {grown / MiB:.0f} MiB"  # was: +60 MiB
    assert await shop.count(Message) == 1


def test_the_cache_keeps_at_most_its_capacity_least_recently_used_first() -> None:
    cache: BoundedCache[str, int] = BoundedCache(capacity=2, ttl_seconds=60)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert len(cache) == 2
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)

    expired: BoundedCache[str, int] = BoundedCache(capacity=2, ttl_seconds=0)
    expired.put("a", 1)
    assert expired.get("a") is None
    assert len(expired) == 0


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
async def test_deeply_nested_json_is_refused_before_anything_else(shop: Shop, depth: int) -> None:
    body = b'{"object":"whatsapp_business_account","entry":' + b"[" * depth + b"]" * depth + b"}"
    response = shop.webhook.post(
        "/webhooks/whatsapp", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400  # was: RecursionError, 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert f"deeper than {MAX_JSON_DEPTH} levels" in response.json()["detail"]


async def test_a_nul_character_in_a_signed_delivery_is_refused_naming_the_field(
    shop: Shop,
) -> None:
    body = inbound_webhook(shop.phone_number_id, CUSTOMER, "hello\u0000there")
    response = shop.post(body)
    assert response.status_code == 422  # was: PostgreSQL refused the text, 500
    problem = response.json()
    assert problem["field"] == "entry[0].changes[0].value.messages[0].text.body"
    assert "NUL" in problem["detail"]
    assert await shop.count(Message) == 0
    # Escaped backslashes are text, not a NUL: stored as sent.
    assert (
        shop.post(inbound_webhook(shop.phone_number_id, CUSTOMER, "a\\u0000b")).status_code == 200
    )
    assert json.loads(json.dumps("a\\u0000b")) == "a\\u0000b"
