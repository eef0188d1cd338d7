"""A process's product search made ready at start-up (catalog/warm_up.py): the pool's
connections have the search statements prepared, nobody's products are read, a broken
model never stops a start, and the app does it before it serves (unless told not to)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from cybergine.catalog.search import search_products
from cybergine.catalog.warm_up import warm_up
from cybergine.db.engine import Database
from cybergine.knowledge.embeddings import LocalMiniLM
from cybergine.settings import Settings
from tests.support.catalog import shoe_shop
from tests.support.server import LiveServer

_PREPARED = text(
    "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%catalog_product_search%'"
)
_BACKENDS_PREPARED = text(
    "SELECT count(DISTINCT pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = 'cybergine' "
    "AND query LIKE '%catalog_product_search%'"
)


async def _prepared_on_every_connection(database: Database, connections: int) -> list[int]:
    """The search statements prepared on each of ``connections`` connections of the
    pool, each checked out at once (so each is a different one)."""
    sessions = [database.autocommit() for _ in range(connections)]
    counts = []
    try:
        for opened in sessions:
            session = await opened.__aenter__()
            counts.append(int(await session.scalar(_PREPARED) or 0))
    finally:
        for opened in reversed(sessions):
            await opened.__aexit__(None, None, None)
    return counts


async def test_the_pool_connections_have_the_search_statements_prepared(
    database: Database,
) -> None:
    cold = Database(database.url, pool_size=2)
    try:
        # A fresh pool: nothing prepared on its connections.
        assert await _prepared_on_every_connection(cold, 2) == [0, 0]
    finally:
        await cold.dispose()
    warmed = Database(database.url, pool_size=2)
    try:
        await warm_up(warmed, LocalMiniLM(), connections=2)
        # Both statements of a search (candidates, then the variants of those found).
        assert await _prepared_on_every_connection(warmed, 2) == [2, 2]
    finally:
        await warmed.dispose()


async def test_searches_after_the_warm_up_find_what_they_found_before(database: Database) -> None:
    minilm = LocalMiniLM()
    owner, _ = await shoe_shop(database, minilm)
    async with database.autocommit() as session:
        before = await search_products(
            session, owner.organisation_id, "waterproof trail shoes", provider=minilm
        )
    await warm_up(database, minilm, connections=2)
    async with database.autocommit() as session:
        after = await search_products(
            session, owner.organisation_id, "waterproof trail shoes", provider=minilm
        )
    assert before
    assert after == before


async def test_a_model_that_cannot_load_does_not_stop_the_start(database: Database) -> None:
    broken = LocalMiniLM(model_sha256="0" * 64)  # refused: not the pinned file
    took = await warm_up(database, broken, connections=1)
    assert took >= 0
    # The statements were still prepared (words only).
    assert await _prepared_on_every_connection(database, 1) == [2]


async def test_without_a_model_the_statements_are_still_prepared(database: Database) -> None:
    await warm_up(database, None, connections=1)
    assert await _prepared_on_every_connection(database, 1) == [2]


@pytest.fixture
def warm_settings(settings: Settings) -> Settings:
    """The default warm-up, which the other tests' servers skip."""
    default = Settings.model_fields["search_warm_connections"].default
    return settings.model_copy(update={"search_warm_connections": default})


@pytest.mark.parametrize("warm", [True, False], ids=["default", "turned-off"])
async def test_the_app_is_warm_before_it_serves_unless_turned_off(
    warm: bool, settings: Settings, warm_settings: Settings
) -> None:
    from cybergine.app import create_app

    with LiveServer(create_app(warm_settings if warm else settings, run_worker=False)) as server:
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{server.url}/readyz")).status_code == 200
        assert await _warmed_backends(settings) == (1 if warm else 0)


async def _warmed_backends(settings: Settings) -> int:
    """Whether the app's connections ran the search statements before its first request."""
    assert settings.database_url is not None
    probe = Database(settings.database_url, pool_size=1, application_name="probe")
    try:
        async with probe.autocommit() as session:
            return min(1, await session.scalar(_BACKENDS_PREPARED) or 0)
    finally:
        await probe.dispose()
