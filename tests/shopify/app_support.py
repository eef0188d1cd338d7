"""The Shopify app's side in tests: the simulator, settings pointing at it, and shops.

Test modules import the fixtures they use from here (``from tests.shopify.app_support
import shopify, settings``): ``settings`` there overrides the root one with the app's
client id and secret and the simulator's admin origin, as an operator would configure
the platform.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from cybergine.accounts.service.organisations import create_organisation
from cybergine.db.engine import Database
from cybergine.settings import Settings
from cybergine.shopify import tokens
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.shopify.simulator import ShopifySimulator

CLIENT_ID = "cybergine-test-client-id"
CLIENT_SECRET = "shpss_cybergine-test-client-secret-0123"
SHOP = "trail-gear.myshopify.com"
OTHER_SHOP = "rival-goods.myshopify.com"


@pytest.fixture
def shopify() -> Iterator[ShopifySimulator]:
    with ShopifySimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as sim:
        sim.add_shop(SHOP, name="Trail Gear", email="owner@trail-gear.example")
        sim.add_shop(OTHER_SHOP, name="Rival Goods", email="boss@rival-goods.example")
        yield sim


@pytest.fixture
def settings(settings: Settings, shopify: ShopifySimulator) -> Settings:
    return settings.model_copy(
        update={
            "shopify_api_key": CLIENT_ID,
            "shopify_api_secret": SecretStr(CLIENT_SECRET),
            "shopify_admin_url": shopify.admin_url,
            "shopify_app_bridge_url": shopify.app_bridge_url,
        }
    )


async def connected_shop(
    database: Database, settings: Settings, sim: ShopifySimulator, domain: str = SHOP
) -> ShopifyShop:
    """A shop row with a live token pair from a real token exchange, in an organisation
    of its own (without going through the install, which other tests cover)."""
    grant = await tokens.exchange_session_token(settings, domain, sim.session_token(domain))
    async with database.transaction() as session:
        organisation = await create_organisation(session, name=f"Org of {domain}")
        shop = ShopifyShop(
            organisation_id=organisation.id,
            shop_domain=domain,
            status=ShopStatus.INSTALLED,
        )
        tokens.store_grant(shop, grant)
        session.add(shop)
    return shop


async def load_shop(database: Database, shop_id: uuid.UUID) -> ShopifyShop:
    async with database.transaction() as session:
        shop = await session.scalar(select(ShopifyShop).where(ShopifyShop.id == shop_id))
        assert shop is not None
        return shop
