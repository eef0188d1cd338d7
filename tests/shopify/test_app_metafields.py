"""The app metafields job against the simulator: it writes the storefront assistant's key
and the platform's origin on the app's installation, writes them again when the
organisation's assistants change which site they answer on, does nothing for a shop
without a storefront assistant, and fails (for its retry) when Shopify does."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from cybergine.accounts.models import Role, User
from cybergine.accounts.principal import Principal
from cybergine.assistants.changes import AssistantChanges
from cybergine.assistants.service import create_assistant, update_assistant
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.job_names import JobName
from cybergine.settings import Settings
from cybergine.shopify import storefront_embed
from cybergine.shopify.admin_api import MAX_ATTEMPTS, AdminApiError
from cybergine.shopify.models import ShopifyShop
from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.simulator.metafields import values_by_namespace
from tests.shopify.app_support import SHOP, connected_shop, settings, shopify
from tests.support.factories import unique_email
from tests.support.jobs import run_jobs

__all__ = ["settings", "shopify"]

STOREFRONT = f"https://{SHOP}"


async def _owner_of(database: Database, shop: ShopifyShop) -> Principal:
    """The shop's organisation gets an owner (the helper connects the shop without one)."""
    from cybergine.accounts.models import Membership
    from cybergine.accounts.service.users import create_user

    async with database.transaction() as session:
        user: User = await create_user(
            session, email=unique_email("owner"), name="Owner", password="a long password 1"
        )
        session.add(
            Membership(organisation_id=shop.organisation_id, user_id=user.id, role=Role.OWNER)
        )
    return Principal(shop.organisation_id, Role.OWNER, user_id=user.id, email=user.email)


async def _queued(database: Database) -> int:
    async with database.transaction() as session:
        return int(
            await session.scalar(
                text(
                    "SELECT count(*) FROM procrastinate_jobs WHERE task_name = :name "
                    "AND status = 'todo'"
                ),
                {"name": JobName.SET_SHOPIFY_APP_METAFIELDS.value},
            )
            or 0
        )


def _written(shopify: ShopifySimulator) -> dict[str, str]:
    return values_by_namespace(shopify.shop(SHOP)).get("cybergine", {})


async def test_the_storefront_assistants_key_is_written_and_rewritten_when_it_changes(
    database: Database, settings: Settings, shopify: ShopifySimulator
) -> None:
    shop = await connected_shop(database, settings, shopify)
    owner = await _owner_of(database, shop)
    # No assistant answers on the storefront yet: nothing to write.
    assert (
        await storefront_embed.write_app_metafields(database, settings, shop.organisation_id)
        is None
    )
    assert _written(shopify) == {}

    async with database.transaction() as session:
        scope = TenantScope(session, shop.organisation_id)
        first = await create_assistant(
            scope,
            owner,
            AssistantChanges(
                name="Mia", allowed_origins=[STOREFRONT], fields_set={"name", "allowed_origins"}
            ),
        )
        first_key = first.widget_key
    assert await _queued(database) == 1  # listing the storefront's origin told the shop
    await run_jobs(database, settings)
    assert _written(shopify) == {
        "widget_key": first_key,
        "platform_origin": settings.public_url,
    }

    # Mia stops answering on the storefront; Max starts: the embed loads Max.
    async with database.transaction() as session:
        scope = TenantScope(session, shop.organisation_id)
        second = await create_assistant(
            scope,
            owner,
            AssistantChanges(
                name="Max", allowed_origins=[STOREFRONT], fields_set={"name", "allowed_origins"}
            ),
        )
        second_key = second.widget_key
        await update_assistant(
            scope,
            owner,
            first.id,
            AssistantChanges(allowed_origins=[], fields_set={"allowed_origins"}),
        )
    await run_jobs(database, settings)
    assert _written(shopify)["widget_key"] == second_key
    metafield_ids = {m.id for m in shopify.shop(SHOP).app_metafields.values()}
    assert len(metafield_ids) == 2  # updated in place, not added again

    # Renaming touches no origin: no job.
    async with database.transaction() as session:
        await update_assistant(
            TenantScope(session, shop.organisation_id),
            owner,
            second.id,
            AssistantChanges(name="Maxi", fields_set={"name"}),
        )
    assert await _queued(database) == 0


async def test_a_failing_admin_api_fails_the_job_for_its_retry(
    database: Database, settings: Settings, shopify: ShopifySimulator
) -> None:
    shop = await connected_shop(database, settings, shopify)
    owner = await _owner_of(database, shop)
    async with database.transaction() as session:
        await storefront_embed.ensure_storefront_assistant(
            session, shop, await session.get_one(User, owner.user_id), [STOREFRONT]
        )
    # Every attempt the client makes fails: the job fails, and procrastinate retries it.
    shopify.fail_next(status=503, endpoint="graphql", times=MAX_ATTEMPTS)
    with pytest.raises(AdminApiError):
        await storefront_embed.write_app_metafields(database, settings, shop.organisation_id)
    assert _written(shopify) == {}
    # Shopify is back: the retry writes them.
    key = await storefront_embed.write_app_metafields(database, settings, shop.organisation_id)
    assert key is not None
    assert _written(shopify)["widget_key"] == key


def test_the_storefront_origins_are_the_shops_and_its_primary_domains() -> None:
    assert storefront_embed.storefront_origins(SHOP, None) == [STOREFRONT]
    assert storefront_embed.storefront_origins(SHOP, f"{STOREFRONT}/") == [STOREFRONT]
    assert storefront_embed.storefront_origins(SHOP, "https://Trail-Gear.example") == [
        STOREFRONT,
        "https://trail-gear.example",
    ]
    assert storefront_embed.storefront_origins(SHOP, "not a url") == [STOREFRONT]
