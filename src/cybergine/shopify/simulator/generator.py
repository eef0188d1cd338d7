"""A deterministic store: the same seed gives the same catalogue, so tests and
``bench/shopify.py`` can reason about it. Each product has a description, a Size and a
Color option, three variants (price, sometimes a compare-at price, stock that is
sometimes zero), one or two images, a vendor, a type and tags; there is a collection per
category and a Sale collection, pages, a blog with articles and the legal policies.
Words come from ``catalogue_words``."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from cybergine.shopify.simulator.catalogue_words import (
    ADJECTIVES,
    ARTICLES,
    CATEGORIES,
    COLOURS,
    FEATURES,
    LINES,
    PAGES,
    POLICIES,
    TAGS,
    USES,
    VENDORS,
)
from cybergine.shopify.simulator.store import (
    Article,
    Blog,
    Collection,
    Ids,
    Image,
    Option,
    Page,
    Policy,
    Product,
    Shop,
    Variant,
    handle_for,
)

IMAGE_HOST = "https://cdn.shopify.com/s/files/1/0000/0001/files"
VARIANTS_PER_PRODUCT = 3
_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def generate_products(shop: Shop, ids: Ids, count: int, *, seed: int = 1) -> list[Product]:
    """``count`` products added to ``shop`` (after those it has), with collections per
    category and a Sale collection updated to hold them."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible catalogue, not a secret)
    handles = {p.handle for p in shop.products.values()}
    made: list[Product] = []
    categories = list(CATEGORIES)
    for index in range(count):
        category = categories[index % len(categories)]
        made.append(_product(rng, ids, category, index, handles))
    for product in made:
        shop.put_product(product)
    _collect(shop, ids, made)
    return made


def generate_content(shop: Shop, ids: Ids) -> None:
    """Pages, a blog with articles and the legal policies (replacing any there)."""
    with shop.lock:
        shop.pages.clear()
        shop.blogs.clear()
        shop.articles.clear()
        shop.policies.clear()
        for title, body in PAGES:
            page = Page(ids.next(), title, handle_for(title), body, published_at=_EPOCH)
            shop.pages[page.id] = page
        blog = Blog(ids.next(), "News", "news")
        shop.blogs[blog.id] = blog
        for title, body in ARTICLES:
            article = Article(
                ids.next(), blog.id, title, handle_for(title), body, published_at=_EPOCH
            )
            shop.articles[article.id] = article
        for kind, title, body in POLICIES:
            shop.policies.append(Policy(ids.next(), kind, title, body))


def _product(rng: random.Random, ids: Ids, category: str, index: int, handles: set[str]) -> Product:
    spec = CATEGORIES[category]
    sizes = list(spec.sizes)
    low, high = spec.prices
    kind = rng.choice(spec.kinds)
    adjective = rng.choice(ADJECTIVES)
    title = f"{rng.choice(LINES)} {adjective} {kind}"
    handle = handle_for(title)
    if handle in handles:
        handle = f"{handle}-{index + 1}"
    handles.add(handle)
    chosen_sizes = sorted(rng.sample(sizes, VARIANTS_PER_PRODUCT), key=sizes.index)
    colours = rng.sample(COLOURS, 2)
    combos = [
        (chosen_sizes[0], colours[0]),
        (chosen_sizes[1], colours[0]),
        (chosen_sizes[2], colours[1]),
    ]
    base = Decimal(rng.randint(low, high)) - Decimal("0.10")
    on_sale = rng.random() < 0.2
    stamp = _EPOCH + dt.timedelta(minutes=index)
    variants = []
    for position, (size, colour) in enumerate(combos, start=1):
        stock = 0 if rng.random() < 0.15 else rng.randint(1, 40)
        variants.append(
            Variant(
                id=ids.next(),
                title=f"{size} / {colour}",
                price=str(base),
                options=(size, colour),
                sku=f"{category[:3].upper()}-{index + 1:05d}-{position}",
                compare_at_price=str(base + Decimal(rng.choice([10, 20, 30]))) if on_sale else None,
                inventory_quantity=stock,
                inventory_policy="DENY",
                position=position,
                created_at=stamp,
                updated_at=stamp,
            )
        )
    images = [
        Image(ids.next(), f"{IMAGE_HOST}/{handle}-{n}.jpg", f"{title} in {colours[n - 1]}")
        for n in range(1, rng.choice([1, 2]) + 1)
    ]
    features = rng.sample(FEATURES, 2)
    description = (
        f"<p>The {title} is made for {rng.choice(USES)} and {rng.choice(USES)}: "
        f"{features[0]}, and {features[1]}.</p>"
        f"<p>Available in {', '.join(chosen_sizes)}; colours {colours[0]} and {colours[1]}.</p>"
    )
    return Product(
        id=ids.next(),
        title=title,
        handle=handle,
        description_html=description,
        vendor=rng.choice(VENDORS),
        product_type=category,
        tags=sorted(rng.sample(TAGS, 3)),
        status="ACTIVE" if rng.random() > 0.03 else "DRAFT",
        options=[
            Option(ids.next(), "Size", list(chosen_sizes)),
            Option(ids.next(), "Color", list(colours)),
        ],
        variants=variants,
        images=images,
        published_at=stamp,
        created_at=stamp,
        updated_at=stamp,
    )


def _collect(shop: Shop, ids: Ids, products: list[Product]) -> None:
    with shop.lock:
        by_handle = {c.handle: c for c in shop.collections.values()}
        for product in products:
            wanted = [handle_for(product.product_type)]
            if any(v.compare_at_price for v in product.variants):
                wanted.append("sale")
            for handle in wanted:
                collection = by_handle.get(handle)
                if collection is None:
                    title = "Sale" if handle == "sale" else product.product_type
                    collection = Collection(
                        ids.next(), title, handle, f"<p>{title} for every trail.</p>"
                    )
                    by_handle[handle] = collection
                    shop.collections[collection.id] = collection
                collection.product_ids[product.id] = None
