"""Product search: each filter, the in-stock and unpublished rules, hostile strings,
tenant isolation, freshness after a write, and the cards it produces."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import text

from cybergine.catalog import search_index, service
from cybergine.catalog.models import ProductStatus
from cybergine.catalog.search import (
    MatchedVariant,
    OptionFilter,
    ProductFilters,
    ProductHit,
    cards_text,
    has_products,
    known_option_values,
    product_card,
    search_products,
)
from cybergine.catalog.shape import read_product
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.embeddings import LocalMiniLM
from cybergine.settings import Settings
from tests.support.catalog import (
    SHOES,
    add_products,
    principal_of,
    shoe_shop,
    shopify_products,
)
from tests.support.factories import make_organisation
from tests.support.jobs import run_jobs

SIZE_42 = OptionFilter("42", ("size",))


@pytest.fixture(scope="module")
def minilm() -> LocalMiniLM:
    return LocalMiniLM()


async def _titles(
    database: Database, organisation_id, query: str, filters: ProductFilters | None = None, **kw
) -> list[str]:
    async with database.autocommit() as session:
        hits = await search_products(session, organisation_id, query, filters, k=10, **kw)
    return [hit.title for hit in hits]


async def test_words_and_meaning_find_trail_shoes_first(database: Database, minilm) -> None:
    owner, _ = await shoe_shop(database, minilm)
    titles = await _titles(
        database, owner.organisation_id, "waterproof trail shoes", provider=minilm
    )
    assert titles[0] == "Waterproof Trail Running Shoe"
    assert "Merino Hiking Socks" not in titles[:4]
    # Found by meaning alone: no word in common with any title.
    by_meaning = await _titles(
        database, owner.organisation_id, "sneakers for jogging", provider=minilm
    )
    assert by_meaning
    assert all("Socks" not in t for t in by_meaning[:2])


async def test_price_bounds_and_currency(database: Database, minilm) -> None:
    owner, _ = await shoe_shop(database, minilm)
    org = owner.organisation_id
    under_100 = await _titles(
        database, org, "trail shoe", ProductFilters(max_price=Decimal(100), currency="EUR")
    )
    assert "Summit Pro Trail Shoe" not in under_100
    assert "Desert Trail Sandal" not in under_100  # priced in USD: never converted
    assert "Waterproof Trail Running Shoe" in under_100
    between = await _titles(
        database, org, "", ProductFilters(min_price=Decimal(70), max_price=Decimal(80))
    )
    assert between == ["Ridge Trail Shoe"]
    dollars = await _titles(database, org, "trail", ProductFilters(currency="usd"))
    assert dollars == ["Desert Trail Sandal"]


async def test_in_stock_and_options_hold_for_one_variant(database: Database, minilm) -> None:
    owner, _ = await shoe_shop(database, minilm)
    org = owner.organisation_id
    wanted = ProductFilters(in_stock=True, options=(SIZE_42,))
    titles = await _titles(database, org, "trail shoe", wanted)
    # The Ridge has stock (in 44) and a 42 (sold out): no single variant is both.
    assert "Ridge Trail Shoe" not in titles
    assert "Waterproof Trail Running Shoe" in titles
    # Without the stock filter it is shown, marked unavailable, with its 42.
    async with database.autocommit() as session:
        hits = await search_products(
            session, org, "ridge trail shoe", ProductFilters(options=(SIZE_42,))
        )
    ridge = next(hit for hit in hits if hit.title == "Ridge Trail Shoe")
    assert [v.title for v in ridge.variants] == ["42 / Blue"]
    card = product_card(ridge, show_variant=True)
    assert card["available"] is False
    assert card["variant"] == "42 / Blue"
    # Option values compare case-insensitively, under any option when no name is given.
    black = await _titles(database, org, "", ProductFilters(options=(OptionFilter("BLACK"),)))
    assert "City Road Runner" not in black
    assert "Waterproof Trail Running Shoe" in black
    # A value under another option's name does not count.
    assert (
        await _titles(database, org, "", ProductFilters(options=(OptionFilter("42", ("color",)),)))
        == []
    )


async def test_out_of_stock_is_never_available_and_unpublished_never_shown(
    database: Database, minilm
) -> None:
    owner, _ = await shoe_shop(database, minilm)
    org = owner.organisation_id
    everything = await _titles(database, org, "trail shoe", provider=minilm)
    assert "Prototype Trail Shoe" not in everything  # draft
    assert "Old Trail Shoe" not in everything  # archived
    socks = await _titles(
        database, org, "socks", ProductFilters(in_stock=True, options=(OptionFilter("L"),))
    )
    assert socks == []
    async with database.autocommit() as session:
        hits = await search_products(
            session, org, "socks", ProductFilters(options=(OptionFilter("l"),))
        )
    assert [product_card(h)["available"] for h in hits] == [False]
    # Publishing state changes are seen at once (same transaction as the write).
    async with database.transaction() as session:
        scope = TenantScope(session, org)
        product = await service.find_by_handle(scope, "waterproof-trail-running-shoe")
        assert product is not None
        draft = service.draft_of(product)
        await service.update_product(
            scope, owner, product.id, replace(draft, status=ProductStatus.DRAFT)
        )
    assert "Waterproof Trail Running Shoe" not in await _titles(database, org, "trail shoe")


async def test_collection_type_and_vendor_filters(database: Database) -> None:
    owner, _ = await shoe_shop(database, None)
    org = owner.organisation_id
    trail = await _titles(database, org, "", ProductFilters(collection="trail"))
    assert sorted(trail) == ["Summit Pro Trail Shoe", "Waterproof Trail Running Shoe"]
    assert await _titles(database, org, "", ProductFilters(product_type="socks")) == [
        "Merino Hiking Socks"
    ]
    assert await _titles(database, org, "", ProductFilters(vendor="Nobody")) == []


async def test_option_values_compare_as_the_catalogue_lower_cases_them(
    database: Database,
) -> None:
    owner, _ = await shoe_shop(database, None)
    org = owner.organisation_id
    shirt = {
        "title": "Linen Shirt",
        "options": [{"name": "Größe", "values": ["M"]}, {"name": "Farbe", "values": ["Weiß"]}],
        "variants": [{"option1": "M", "option2": "Weiß", "price": "39.00"}],
    }
    await add_products(database, owner, {"shirt": shirt})
    # As a model's tool call or a customer writes them: "ß" kept, any case.
    for value, names in (("Weiß", ("farbe",)), ("WEIß", ()), ("weiß", ("Farbe", "colour"))):
        found = await _titles(
            database, org, "", ProductFilters(options=(OptionFilter(value, names),))
        )
        assert found == ["Linen Shirt"], value
    named = ProductFilters(options=(OptionFilter("m", ("GRÖßE",)),))
    assert await _titles(database, org, "", named) == ["Linen Shirt"]
    async with database.autocommit() as session:
        assert await known_option_values(session, org, ["WEIß", "weiss"]) == {"weiß"}


@pytest.mark.parametrize(
    "query",
    [
        "'; DROP TABLE catalog_products; --",
        "trail & | ! ( ) :* <-> \\",
        "%_%",
        "\u0000\u202e shoe",
        "x" * 5000,
        "\uff54\uff52\uff41\uff49\uff4c",  # "trail" in full-width letters
    ],
)
async def test_hostile_strings_are_only_words(database: Database, query: str) -> None:
    owner, _ = await shoe_shop(database, None)
    filters = ProductFilters(options=(OptionFilter("'); --", ("size' OR 1=1",)),))
    async with database.autocommit() as session:
        await search_products(session, owner.organisation_id, query)
        assert await search_products(session, owner.organisation_id, query, filters) == []
        assert await known_option_values(session, owner.organisation_id, [query[:50]]) <= {"42"}


async def test_another_organisations_products_are_never_returned(
    database: Database, minilm
) -> None:
    mine, _ = await shoe_shop(database, minilm, name="Mine")
    theirs, _ = await shoe_shop(database, minilm, name="Theirs")
    async with database.autocommit() as session:
        hits = await search_products(
            session, mine.organisation_id, "waterproof trail shoe", provider=minilm, k=20
        )
        assert hits
        async with database.autocommit() as other:
            their_ids = {
                h.product_id
                for h in await search_products(
                    other, theirs.organisation_id, "waterproof trail shoe", provider=minilm, k=20
                )
            }
    assert not their_ids & {hit.product_id for hit in hits}
    assert len(hits) == len(their_ids)


async def test_a_change_is_searchable_and_its_vector_made_again(database: Database, minilm) -> None:
    owner, ids = await shoe_shop(database, minilm)
    org = owner.organisation_id
    async with database.autocommit() as session:
        assert await has_products(session, org)
        assert await known_option_values(session, org, ["42", "black", "purple", "trail"]) == {
            "42",
            "black",
        }
    changed = {**SHOES["road"], "title": "City Road Runner Gravel Edition"}
    async with database.transaction() as session:
        await service.update_product(
            TenantScope(session, org), owner, ids["road"], read_product(changed)
        )
    assert await _titles(database, org, "gravel") == ["City Road Runner Gravel Edition"]
    # Only the changed product waits for a vector.
    assert await search_index.embed_pending(database, org, minilm) == 1
    assert await search_index.embed_pending(database, org, minilm) == 0
    # A re-sync of unchanged products rewrites no row and embeds nothing again.
    async with database.transaction() as session:
        before = await session.scalar(text("SELECT max(updated_at) FROM catalog_product_search"))
        assert not await search_index.refresh(session, org, list(ids.values()))
        after = await session.scalar(text("SELECT max(updated_at) FROM catalog_product_search"))
    assert before == after


async def test_one_pass_embeds_every_product_a_batch_at_a_time(database: Database, minilm) -> None:
    """Batches of two: each batch's vectors are stored while the next one is embedded,
    and every visible product ends with the vector of its own text."""
    organisation, owner = await make_organisation(database, name="Batches")
    principal = principal_of(organisation.id, owner.id, owner.email)
    await add_products(database, principal, SHOES)
    embedded = await search_index.embed_pending(database, organisation.id, minilm, batch=2)
    assert await search_index.embed_pending(database, organisation.id, minilm, batch=2) == 0
    async with database.autocommit() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT document, embedding::text FROM catalog_product_search "
                    "WHERE organisation_id = :o AND visible"
                ),
                {"o": organisation.id},
            )
        ).all()
    assert embedded == len(rows) > 4  # three batches at least
    own = await minilm.embed([row.document for row in rows], kind="document")
    for row, vector in zip(rows, own, strict=True):
        stored = [float(x) for x in row.embedding.strip("[]").split(",")]
        assert max(abs(a - b) for a, b in zip(stored, vector, strict=True)) < 1e-5


async def test_a_product_is_found_by_the_meaning_of_its_descriptions_start(
    database: Database, minilm
) -> None:
    owner, _ = await shoe_shop(database, minilm)
    org = owner.organisation_id
    care = "Wash cold on a gentle cycle, close every buckle first and dry flat. " * 30
    cover = {
        **SHOES["socks"],
        "title": "Nordlys",
        "product_type": "Accessories",
        "body_html": "<p>Keeps a toddler dry and warm in the pram on wet winter walks: a "
        "waterproof shell clips over any pushchair in seconds, with a clear window so the "
        "little one can watch the world go by, and folds into its own pouch under the "
        f"seat.</p><p>{care}</p><p>Sewn in Tallinn.</p>",
    }
    await add_products(database, owner, {"cover": cover})
    assert await search_index.embed_pending(database, org, minilm) == 1
    async with database.autocommit() as session:
        document = await session.scalar(
            text(
                "SELECT document FROM catalog_product_search WHERE organisation_id = :o "
                "AND document LIKE 'Nordlys.%'"
            ),
            {"o": org},
        )
        by_meaning = await search_products(
            session, org, "rain cover for a baby buggy", k=3, provider=minilm
        )
    # The vector is made of the product's facets and the start of its description (its
    # care instructions, cut off, would drown that meaning: 0.29 against 0.43)...
    assert "toddler dry and warm in the pram" in document
    assert len(document) <= search_index.DOCUMENT_CHARS
    # ...which is enough to find it with no word in common,
    assert [hit.title for hit in by_meaning] == ["Nordlys"]
    assert by_meaning[0].lexical == 0
    # and the words past it are still searched.
    assert await _titles(database, org, "tallinn") == ["Nordlys"]


async def test_shopifys_own_products_are_searchable(database: Database) -> None:
    owner, _ = await shoe_shop(database, None)
    await add_products(database, owner, {str(n): p for n, p in enumerate(shopify_products())})
    hits_titles = await _titles(
        database, owner.organisation_id, "ipod", ProductFilters(options=(OptionFilter("pink"),))
    )
    assert hits_titles == ["IPod Nano - 8GB"]


def test_cards_and_their_text() -> None:
    hit = ProductHit(
        product_id=uuid.uuid4(),
        title="Waterproof Trail Running Shoe",
        url="https://shop.example/products/wtrs",
        score=1.0,
        lexical=1.0,
        dense=None,
        variants=(
            MatchedVariant(
                uuid.uuid4(), "42 / Black", Decimal("89.9"), Decimal("99"), "EUR", True, None
            ),
            MatchedVariant(uuid.uuid4(), "43 / Black", Decimal("79"), None, "EUR", False, None),
        ),
    )
    card = product_card(hit, show_variant=True)
    assert card == {
        "id": str(hit.product_id),
        "title": "Waterproof Trail Running Shoe",
        "url": "https://shop.example/products/wtrs",
        "image_url": None,
        "price": "89.90",
        "currency": "EUR",
        "compare_at_price": "99.00",
        "available": True,
        "variant": "42 / Black",
    }
    assert cards_text([card]) == (
        "- Waterproof Trail Running Shoe (42 / Black): 89.90 EUR (was 99.00), in stock "
        "https://shop.example/products/wtrs"
    )


async def test_the_embedding_job_embeds_what_a_write_changed(
    database: Database, settings: Settings
) -> None:
    organisation, owner = await make_organisation(database, name="Jobs")
    principal = principal_of(organisation.id, owner.id, owner.email)
    await add_products(database, principal, {"fit": SHOES["fit"], "road": SHOES["road"]})
    async with database.autocommit() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs "
                "WHERE queueing_lock = :lock AND lock = :lock"
            ),
            {"lock": search_index.embed_lock(organisation.id)},
        )
    # One job for the organisation, however many products changed; and the one queued
    # while another runs waits for it (the same lock) rather than embed the same rows.
    assert waiting == 1
    await run_jobs(database, settings)
    async with database.autocommit() as session:
        models = list(
            await session.scalars(
                text(
                    "SELECT embedding_model FROM catalog_product_search WHERE organisation_id = :o"
                ),
                {"o": organisation.id},
            )
        )
    assert models == [LocalMiniLM().name] * 2
