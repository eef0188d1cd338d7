"""A shop's offline token: obtained by token exchange against the Shopify simulator, kept
fresh by refresh, refreshed by one process at a time, and refused clearly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from cybergine.db.engine import Database
from cybergine.errors import InvalidInput
from cybergine.settings import Settings
from cybergine.shopify import tokens
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.shopify.session_tokens import InvalidSessionToken
from cybergine.shopify.simulator import ShopifySimulator
from tests.shopify.app_support import (
    OTHER_SHOP,
    SHOP,
    connected_shop,
    load_shop,
    settings,
    shopify,
)

__all__ = ["settings", "shopify"]


def issued(sim: ShopifySimulator, domain: str = SHOP) -> list[str]:
    return list(sim.tokens.issued(domain))


async def expire_soon(database: Database, shop: ShopifyShop) -> None:
    """The stored token now expires inside the refresh margin."""
    async with database.transaction() as session:
        await session.execute(
            update(ShopifyShop)
            .where(ShopifyShop.id == shop.id)
            .values(access_token_expires_at=datetime.now(UTC) + timedelta(minutes=1))
        )


async def test_exchange_answers_an_expiring_token_with_a_refresh_token(
    settings: Settings, shopify: ShopifySimulator
) -> None:
    grant = await tokens.exchange_session_token(settings, SHOP, shopify.session_token(SHOP))
    assert grant.access_token in issued(shopify)
    assert grant.refresh_token
    assert grant.access_token_expires_at is not None
    left = grant.access_token_expires_at - datetime.now(UTC)
    assert timedelta(minutes=59) < left <= timedelta(hours=1)
    assert grant.refresh_token_expires_at is not None
    assert grant.refresh_token_expires_at - datetime.now(UTC) > timedelta(days=89)
    assert grant.scopes == "read_products,read_content,read_legal_policies"


async def test_a_session_token_of_another_shop_is_refused_as_an_invalid_session(
    settings: Settings, shopify: ShopifySimulator
) -> None:
    with pytest.raises(InvalidSessionToken) as refused:
        await tokens.exchange_session_token(settings, SHOP, shopify.session_token(OTHER_SHOP))
    assert refused.value.status == 401
    assert refused.value.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert issued(shopify) == []


async def test_tokens_are_stored_encrypted(
    database: Database, settings: Settings, shopify: ShopifySimulator
) -> None:
    shop = await connected_shop(database, settings, shopify)
    async with database.transaction() as session:
        raw = (
            await session.execute(
                text("SELECT access_token, refresh_token FROM shopify_shops WHERE id = :id"),
                {"id": shop.id},
            )
        ).one()
    assert shop.access_token is not None
    assert shop.refresh_token is not None
    assert shop.access_token not in raw.access_token
    assert shop.refresh_token not in raw.refresh_token


async def test_a_valid_token_is_returned_as_stored_without_a_refresh(
    database: Database, settings: Settings, shopify: ShopifySimulator
) -> None:
    shop = await connected_shop(database, settings, shopify)
    assert await tokens.access_token(database, shop, settings) == shop.access_token
    assert issued(shopify) == [shop.access_token]


async def test_a_token_near_its_expiry_is_refreshed_and_the_new_pair_stored(
    database: Database, settings: Settings, shopify: ShopifySimulator
) -> None:
    shop = await connected_shop(database, settings, shopify)
    await expire_soon(database, shop)
    fresh = await tokens.access_token(database, shop.id, settings)
    assert fresh != shop.access_token
    assert fresh in issued(shopify)
    stored = await load_shop(database, shop.id)
    assert stored.access_token == fresh
    assert stored.refresh_token not in (None, shop.refresh_token)
    assert stored.access_token_expires_at is not None
    assert stored.access_token_expires_at > datetime.now(UTC) + timedelta(minutes=59)
    # The refreshed token works at Shopify; the next call uses it as is.
    assert shopify.tokens.shop_of(fresh) == SHOP
    assert await tokens.access_token(database, shop.id, settings) == fresh


async def test_two_callers_needing_a_refresh_at_once_refresh_once(
    database: Database, settings: Settings, shopify: ShopifySimulator
) -> None:
    shop = await connected_shop(database, settings, shopify)
    await expire_soon(database, shop)
    # Hold the refresh lock so both callers read the stale token and queue behind it.
    blocker = Database(database.url, pool_size=1)
    try:
        async with blocker.transaction() as holding:
            await holding.execute(
                text("SELECT pg_advisory_xact_lock(:space, :key)"),
                {"space": tokens._LOCK_SPACE, "key": tokens._lock_key(shop.id)},
            )
            callers = [
                asyncio.create_task(tokens.access_token(database, shop.id, settings))
                for _ in range(2)
            ]
            await wait_for_lock_waiters(blocker, 2)
        first, second = await asyncio.gather(*callers)
    finally:
        await blocker.dispose()
    assert first == second
    assert len(issued(shopify)) == 2  # the exchange's token and one refresh's
    stored = await load_shop(database, shop.id)
    assert stored.access_token == first


async def wait_for_lock_waiters(database: Database, count: int) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        async with database.autocommit() as session:
            waiting = await session.scalar(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            )
        if waiting == count:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{waiting} waiting, not {count}"
        await asyncio.sleep(0.01)


async def test_a_refused_refresh_says_the_shop_must_open_the_app_again(
    database: Database, settings: Settings, shopify: ShopifySimulator
) -> None:
    shop = await connected_shop(database, settings, shopify)
    await expire_soon(database, shop)
    # A refresh token Shopify no longer knows (revoked with the app's access).
    async with database.transaction() as session:
        row = await session.scalar(select(ShopifyShop).where(ShopifyShop.id == shop.id))
        assert row is not None
        row.refresh_token = "shprt_revoked"
    with pytest.raises(tokens.TokenRefused) as refused:
        await tokens.access_token(database, shop.id, settings)
    assert "invalid_grant" in refused.value.detail
    assert "Opening the app from the shop's Shopify admin" in refused.value.detail


async def test_an_uninstalled_shop_has_no_token(
    database: Database, settings: Settings, shopify: ShopifySimulator
) -> None:
    shop = await connected_shop(database, settings, shopify)
    async with database.transaction() as session:
        row = await session.scalar(select(ShopifyShop).where(ShopifyShop.id == shop.id))
        assert row is not None
        row.status = ShopStatus.UNINSTALLED
    with pytest.raises(tokens.ShopNotConnected):
        await tokens.access_token(database, shop.id, settings)


async def test_an_unreachable_token_endpoint_is_unavailable_not_refused(
    database: Database, settings: Settings, shopify: ShopifySimulator
) -> None:
    shop = await connected_shop(database, settings, shopify)
    await expire_soon(database, shop)
    closed = settings.model_copy(update={"shopify_admin_url": "http://127.0.0.1:9/{shop}"})
    with pytest.raises(tokens.ShopifyUnavailable):
        await tokens.access_token(database, shop.id, closed)
    # Nothing was lost: the stored pair is the one from before.
    stored = await load_shop(database, shop.id)
    assert stored.refresh_token == shop.refresh_token


def test_a_hostile_shop_domain_never_reaches_a_url() -> None:
    settings = Settings.model_construct(shopify_admin_url="https://{shop}")
    for hostile in (
        "evil.test/x.myshopify.com",
        "shop.myshopify.com.evil.test",
        "a@b.myshopify.com",
    ):
        with pytest.raises(InvalidInput, match=r"myshopify\.com"):
            tokens.token_url(settings, hostile)
    assert tokens.token_url(settings, "Good-Shop.myshopify.com") == (
        "https://good-shop.myshopify.com/admin/oauth/access_token"
    )


async def test_a_token_shopify_rejected_early_is_refreshed_once_for_every_caller(
    database: Database, settings: Settings, shopify: ShopifySimulator
) -> None:
    shop = await connected_shop(database, settings, shopify)
    old = shop.access_token
    assert old is not None
    shopify.tokens.expire(old)  # Shopify ended it, though its expiry is an hour away
    first, second = await asyncio.gather(
        tokens.access_token(database, shop.id, settings, rejected=old),
        tokens.access_token(database, shop.id, settings, rejected=old),
    )
    assert first == second != old
    assert shopify.tokens.shop_of(first) == SHOP
    assert len(issued(shopify)) == 2  # the exchange's and one refresh's
    # A caller rejecting a token already replaced gets the new one, with no refresh.
    assert await tokens.access_token(database, shop.id, settings, rejected=old) == first
    assert len(issued(shopify)) == 2
