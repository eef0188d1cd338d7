from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cybergine.shopify.simulator import ShopifySimulator
from tests.support.server import TLS

CLIENT_ID = "simulator-client-id"
CLIENT_SECRET = "simulator-client-secret-0123456789"
SHOP = "trail-gear.myshopify.com"


@pytest.fixture
def simulator() -> Iterator[ShopifySimulator]:
    with ShopifySimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as sim:
        sim.add_shop(SHOP, name="Trail Gear", email="owner@trail-gear.example")
        yield sim


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, verify=TLS) as client:
        yield client
