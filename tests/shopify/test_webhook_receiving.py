"""POST /webhooks/shopify: verified by HMAC, stored once, acknowledged, processed by a
job; refused with nothing stored when the signature or the headers are wrong."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from cybergine.settings import Settings
from cybergine.shopify.models import DeliveryStatus
from tests.shopify.signed_fixtures import fixture_bytes, vectors
from tests.shopify.test_webhook_signature import vector_body
from tests.shopify.webhook_support import (
    PREVIOUS_SECRET,
    SECRET,
    connect_shop,
    deliver,
    deliveries,
    delivery_count,
    fixture_payload,
    headers_for,
    shopify_settings,
)
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

PRODUCT = b'{"id":788032119674292922,"title":"Example T-Shirt"}'


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return shopify_settings(settings)


async def test_a_signed_delivery_is_stored_acknowledged_and_processed(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    """A real orders/create payload: a topic the app does not subscribe to and nothing
    handles, so it is stored, acknowledged and marked ignored."""
    connected = await connect_shop(database)
    body = fixture_bytes("shopify/webhooks/orders_create_01.json")
    answer = deliver(live_server.url, body, topic="orders/create", shop=connected.domain)
    assert answer.status_code == 200
    assert answer.json() == {"status": "received"}
    (stored,) = await deliveries(database)
    assert stored.organisation_id == connected.organisation.id
    assert stored.topic == "orders/create"
    assert stored.api_version == "2026-07"
    assert stored.triggered_at is not None
    assert stored.payload == json.loads(body)
    assert stored.status is DeliveryStatus.RECEIVED
    async with database.transaction() as session:
        jobs = (
            await session.execute(
                text("SELECT args FROM procrastinate_jobs WHERE task_name = :task"),
                {"task": "shopify:process_webhook"},
            )
        ).scalars()
        assert list(jobs) == [{"delivery_id": str(stored.id)}]
    await run_jobs(database, settings)
    (processed,) = await deliveries(database)
    assert processed.status is DeliveryStatus.IGNORED
    assert processed.attempts == 1
    assert processed.processed_at is not None


async def test_a_redelivery_answers_200_and_stores_nothing_new(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    connected = await connect_shop(database)
    webhook_id = str(uuid.uuid4())
    for expected in ("received", "duplicate", "duplicate"):
        answer = deliver(
            live_server.url,
            PRODUCT,
            topic="products/update",
            shop=connected.domain,
            webhook_id=webhook_id,
        )
        assert answer.status_code == 200
        assert answer.json() == {"status": expected}
    assert await delivery_count(database) == 1
    async with database.transaction() as session:
        jobs = await session.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs "
                "WHERE task_name = 'shopify:process_webhook'"
            )
        )
    assert jobs == 1


async def test_the_same_webhook_id_from_another_shop_is_another_delivery(
    live_server: LiveServer, database: Database
) -> None:
    first, second = await connect_shop(database), await connect_shop(database)
    webhook_id = str(uuid.uuid4())
    for connected in (first, second):
        answer = deliver(
            live_server.url,
            PRODUCT,
            topic="products/update",
            shop=connected.domain,
            webhook_id=webhook_id,
        )
        assert answer.json() == {"status": "received"}
    stored = await deliveries(database)
    assert {d.organisation_id for d in stored} == {first.organisation.id, second.organisation.id}


@pytest.mark.parametrize(
    "vector", vectors("webhook_hmac_sha256_base64_vectors.json"), ids=lambda v: v["id"]
)
def test_the_published_hmac_vectors_verify_at_the_endpoint(
    vector: dict[str, Any], settings: Settings
) -> None:
    """Each published (secret, body, header) triple passes the route's check: a body
    that is not JSON, or not an object, then fails as malformed (422), not as forged."""
    from pydantic import SecretStr

    from cybergine.app import create_app

    configured = settings.model_copy(update={"shopify_api_secret": SecretStr(vector["secret"])})
    body = vector_body(vector)
    with LiveServer(create_app(configured, run_worker=False)) as server:
        headers = headers_for(body, topic="orders/create", shop="unknown-shop.myshopify.com")
        headers["X-Shopify-Hmac-Sha256"] = vector["header_value"]
        answer = httpx.post(f"{server.url}/webhooks/shopify", content=body, headers=headers)
        assert answer.status_code != 401, answer.text
        tampered = httpx.post(
            f"{server.url}/webhooks/shopify", content=body + b" ", headers=headers
        )
        assert tampered.status_code == 401
        assert tampered.headers["content-type"] == "application/problem+json"


async def test_a_tampered_body_is_refused_with_401_and_nothing_stored(
    live_server: LiveServer, database: Database
) -> None:
    connected = await connect_shop(database)
    signed = headers_for(PRODUCT, topic="products/update", shop=connected.domain)
    tampered = PRODUCT.replace(b"T-Shirt", b"T-Shirt!")
    answer = deliver(
        live_server.url,
        tampered,
        topic="products/update",
        shop=connected.domain,
        headers={"X-Shopify-Hmac-Sha256": signed["X-Shopify-Hmac-Sha256"]},
    )
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert await delivery_count(database) == 0


async def test_the_previous_secret_is_accepted_during_a_rotation_and_no_other(
    live_server: LiveServer, database: Database
) -> None:
    connected = await connect_shop(database)
    old = deliver(
        live_server.url,
        PRODUCT,
        topic="products/update",
        shop=connected.domain,
        secret=PREVIOUS_SECRET,
    )
    assert old.status_code == 200
    forged = deliver(
        live_server.url,
        PRODUCT,
        topic="products/update",
        shop=connected.domain,
        secret=SECRET + "x",
    )
    assert forged.status_code == 401
    assert await delivery_count(database) == 1


@pytest.mark.parametrize(
    ("name", "changed", "status"),
    [
        ("no topic", {"X-Shopify-Topic": ""}, 400),
        ("topic with a path", {"X-Shopify-Topic": "../../etc/passwd"}, 400),
        ("topic too long", {"X-Shopify-Topic": "products/" + "a" * 200}, 400),
        ("no webhook id", {"X-Shopify-Webhook-Id": ""}, 400),
        ("webhook id with spaces", {"X-Shopify-Webhook-Id": "a b"}, 400),
        ("webhook id too long", {"X-Shopify-Webhook-Id": "a" * 500}, 400),
        ("shop on another domain", {"X-Shopify-Shop-Domain": "evil.test"}, 400),
        ("shop with a path", {"X-Shopify-Shop-Domain": "evil.test/x.myshopify.com"}, 400),
        ("shop with a suffix", {"X-Shopify-Shop-Domain": "x.myshopify.com.evil.test"}, 400),
        ("no shop", {"X-Shopify-Shop-Domain": ""}, 400),
        (
            "bad signature",
            {"X-Shopify-Hmac-Sha256": "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="},
            401,
        ),
        ("empty signature", {"X-Shopify-Hmac-Sha256": ""}, 401),
        ("huge signature", {"X-Shopify-Hmac-Sha256": "A" * 5000}, 401),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_hostile_headers_are_refused_and_nothing_is_stored(
    live_server: LiveServer, database: Database, name: str, changed: dict[str, str], status: int
) -> None:
    connected = await connect_shop(database)
    answer = deliver(
        live_server.url, PRODUCT, topic="products/update", shop=connected.domain, headers=changed
    )
    assert answer.status_code == status, (name, answer.text)
    assert answer.headers["content-type"] == "application/problem+json"
    assert await delivery_count(database) == 0


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"', b"{"])
async def test_a_signed_body_that_is_not_a_json_object_is_refused(
    live_server: LiveServer, database: Database, body: bytes
) -> None:
    connected = await connect_shop(database)
    answer = deliver(live_server.url, body, topic="products/update", shop=connected.domain)
    assert answer.status_code == 400
    assert await delivery_count(database) == 0


async def test_a_body_over_the_limit_is_refused_before_it_is_read(
    live_server: LiveServer, database: Database
) -> None:
    connected = await connect_shop(database)
    body = b'{"a":"' + b"x" * (6 * 1024 * 1024) + b'"}'
    answer = deliver(live_server.url, body, topic="products/update", shop=connected.domain)
    assert answer.status_code == 413
    assert await delivery_count(database) == 0


async def test_a_compliance_payload_naming_another_shop_is_refused(
    live_server: LiveServer, database: Database
) -> None:
    mine, other = await connect_shop(database), await connect_shop(database)
    body = fixture_payload("shop_redact_01.json", other.domain)
    answer = deliver(live_server.url, body, topic="shop/redact", shop=mine.domain)
    assert answer.status_code == 400
    assert "shop_domain" in answer.json()["detail"]
    assert await delivery_count(database) == 0


@pytest.mark.parametrize(
    ("topic", "fixture"),
    [
        ("shop/redact", "shop_redact_01.json"),
        ("customers/redact", "customers_redact_01.json"),
        ("customers/data_request", "customers_data_request_01.json"),
    ],
)
async def test_a_compliance_topic_for_an_unknown_shop_is_acknowledged_and_audited(
    live_server: LiveServer, database: Database, topic: str, fixture: str
) -> None:
    domain = f"never-{uuid.uuid4().hex[:8]}.myshopify.com"
    body = fixture_payload(fixture, domain)
    webhook_id = str(uuid.uuid4())
    answer = deliver(live_server.url, body, topic=topic, shop=domain, webhook_id=webhook_id)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ignored"}
    assert await delivery_count(database) == 0
    async with database.transaction() as session:
        (event,) = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.action == "shopify.compliance.no_shop")
            )
        ).scalars()
    assert event.target_id == domain
    assert event.details == {"topic": topic, "webhook_id": webhook_id}
    assert "john@example.com" not in json.dumps(event.details)


async def test_another_topic_for_an_unknown_shop_is_acknowledged_and_not_stored(
    live_server: LiveServer, database: Database
) -> None:
    answer = deliver(
        live_server.url, PRODUCT, topic="products/update", shop="nobody-here.myshopify.com"
    )
    assert answer.status_code == 200
    assert answer.json() == {"status": "ignored"}
    assert await delivery_count(database) == 0
    async with database.transaction() as session:
        audited = await session.scalar(
            select(AuditEvent.id).where(AuditEvent.action == "shopify.compliance.no_shop")
        )
    assert audited is None


async def test_without_a_configured_secret_every_delivery_is_refused(
    database: Database, settings: Settings
) -> None:
    from cybergine.app import create_app

    configured = settings.model_copy(
        update={"shopify_api_secret": None, "shopify_previous_api_secret": None}
    )
    connected = await connect_shop(database)
    with LiveServer(create_app(configured, run_worker=False)) as server:
        answer = deliver(server.url, PRODUCT, topic="products/update", shop=connected.domain)
    assert answer.status_code == 401
    assert await delivery_count(database) == 0
