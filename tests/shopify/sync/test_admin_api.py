"""The GraphQL Admin API client against the Shopify simulator: it waits for the cost
bucket when throttled (HTTP 200 with THROTTLED), retries server errors, names a revoked
token and refused input."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from cybergine.settings import Settings
from cybergine.shopify import queries, tokens
from cybergine.shopify.admin_api import (
    AccessRevoked,
    AdminApiError,
    AdminClient,
    GraphQLErrors,
    UserErrors,
)
from cybergine.shopify.simulator import ShopifySimulator

CLIENT_ID = "admin-api-test-client"
CLIENT_SECRET = "admin-api-test-client-secret-32-bytes"


@pytest.fixture
def simulator() -> Iterator[ShopifySimulator]:
    with ShopifySimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as sim:
        yield sim


@pytest.fixture
def api_settings(settings: Settings, simulator: ShopifySimulator) -> Settings:
    return settings.model_copy(
        update={
            "shopify_admin_url": simulator.admin_url,
            "shopify_api_key": CLIENT_ID,
            "shopify_api_secret": SecretStr(CLIENT_SECRET),
        }
    )


async def _client(settings: Settings, simulator: ShopifySimulator) -> AdminClient:
    domain = f"api-{uuid.uuid4().hex[:8]}.myshopify.com"
    simulator.seed(domain, generate={"products": 5}, content=True)
    grant = await tokens.exchange_session_token(settings, domain, simulator.session_token(domain))
    return AdminClient(settings, domain, grant.access_token)


async def test_a_query_answers_its_data_and_the_bucket_it_left(
    api_settings: Settings, simulator: ShopifySimulator
) -> None:
    async with await _client(api_settings, simulator) as client:
        data = await client.query(queries.SHOP)
        assert data["shop"]["currencyCode"] == "EUR"
        assert client.last_throttle is not None
        assert client.last_throttle.maximum_available == simulator.bucket_maximum


async def test_a_throttled_query_waits_for_the_bucket_and_goes_through(
    api_settings: Settings, simulator: ShopifySimulator
) -> None:
    async with await _client(api_settings, simulator) as client:
        # A bucket nearly empty that refills at 200 points a second: the pages query
        # (about 100 points) is refused once, then passes after ~0.5 s.
        simulator.set_bucket(client.shop_domain, maximum=1000, restore_rate=200, available=1)
        started = time.monotonic()
        data = await client.query(queries.PAGES, {"after": None})
        waited = time.monotonic() - started
        assert data["pages"]["nodes"]
        assert client.throttle_waits >= 1
        assert 0.2 < waited < 5


async def test_server_errors_are_retried_and_then_reported(
    api_settings: Settings, simulator: ShopifySimulator
) -> None:
    async with await _client(api_settings, simulator) as client:
        simulator.fail_next(status=502, times=2)
        assert (await client.query(queries.SHOP))["shop"]
        assert client.retries == 2
        simulator.fail_next(status=503, times=10)
        with pytest.raises(AdminApiError) as failure:
            await client.query(queries.SHOP)
        assert failure.value.retryable
        assert failure.value.status == 503


async def test_a_revoked_token_is_named(
    api_settings: Settings, simulator: ShopifySimulator
) -> None:
    domain = f"api-{uuid.uuid4().hex[:8]}.myshopify.com"
    simulator.add_shop(domain)
    async with AdminClient(api_settings, domain, "shpat_not-a-token") as client:
        with pytest.raises(AccessRevoked) as failure:
            await client.query(queries.SHOP)
    assert failure.value.status == 401
    assert domain in str(failure.value)


async def test_refused_queries_and_user_errors_are_named(
    api_settings: Settings, simulator: ShopifySimulator
) -> None:
    async with await _client(api_settings, simulator) as client:
        with pytest.raises(GraphQLErrors):
            await client.query("{ shop { noSuchField } }")
        with pytest.raises(UserErrors) as refused:
            await client.mutate(
                queries.BULK_OPERATION_RUN_QUERY,
                "bulkOperationRunQuery",
                {"query": "{ shop { name } }"},  # no connection: refused
            )
        assert refused.value.errors
