"""Words the store generator builds its catalogue from (data only; ``generator`` has the
rules). Categories carry their product kinds, option values and price range in EUR."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    kinds: tuple[str, ...]
    sizes: tuple[str, ...]
    prices: tuple[int, int]  # whole euros, lowest and highest


CATEGORIES: dict[str, Category] = {
    "Shoes": Category(
        kinds=(
            "Trail Running Shoes",
            "Hiking Boots",
            "Sneakers",
            "Sandals",
            "Approach Shoes",
        ),
        sizes=(
            "38",
            "39",
            "40",
            "41",
            "42",
            "43",
            "44",
            "45",
            "46",
        ),
        prices=(39, 229),
    ),
    "Jackets": Category(
        kinds=(
            "Rain Jacket",
            "Down Jacket",
            "Softshell Jacket",
            "Windbreaker",
            "Fleece Jacket",
        ),
        sizes=(
            "XS",
            "S",
            "M",
            "L",
            "XL",
            "XXL",
        ),
        prices=(49, 349),
    ),
    "Backpacks": Category(
        kinds=(
            "Daypack",
            "Trekking Backpack",
            "Hydration Pack",
            "Travel Backpack",
        ),
        sizes=(
            "18 L",
            "24 L",
            "30 L",
            "40 L",
            "55 L",
        ),
        prices=(29, 259),
    ),
    "Shirts": Category(
        kinds=(
            "Merino T-Shirt",
            "Hiking Shirt",
            "Base Layer",
            "Polo Shirt",
            "Tank Top",
        ),
        sizes=(
            "XS",
            "S",
            "M",
            "L",
            "XL",
        ),
        prices=(19, 99),
    ),
    "Trousers": Category(
        kinds=(
            "Hiking Trousers",
            "Convertible Pants",
            "Running Tights",
            "Shorts",
        ),
        sizes=(
            "28",
            "30",
            "32",
            "34",
            "36",
            "38",
        ),
        prices=(29, 159),
    ),
    "Camping": Category(
        kinds=(
            "Tent",
            "Sleeping Bag",
            "Sleeping Mat",
            "Camping Stove",
            "Headlamp",
        ),
        sizes=(
            "Compact",
            "Standard",
            "Large",
        ),
        prices=(19, 499),
    ),
}

ADJECTIVES = [
    "Waterproof",
    "Lightweight",
    "Breathable",
    "Insulated",
    "Rugged",
    "Packable",
    "Quick-Dry",
    "Windproof",
    "Recycled",
    "Ultralight",
    "All-Season",
    "Reflective",
]
LINES = [
    "Alpine",
    "Summit",
    "Ridge",
    "Canyon",
    "Glacier",
    "Forest",
    "Coastal",
    "Tundra",
    "Meadow",
    "Granite",
    "Aurora",
    "Cascade",
    "Horizon",
    "Pioneer",
    "Voyager",
    "Nomad",
]
COLOURS = [
    "Black",
    "Navy",
    "Forest Green",
    "Red",
    "Grey",
    "Orange",
    "Blue",
    "Sand",
    "Olive",
    "White",
]
VENDORS = ["Northpeak", "Trailforge", "Bergwerk", "Fjellstad", "Cumbre", "Wildmoor"]
TAGS = [
    "outdoor",
    "hiking",
    "running",
    "camping",
    "travel",
    "waterproof",
    "vegan",
    "recycled",
    "winter",
    "summer",
    "bestseller",
    "new",
]
FEATURES = [
    "a seam-sealed shell that keeps rain out for hours",
    "a grippy outsole made for wet rock and loose gravel",
    "recycled fabrics and PFC-free water repellency",
    "a fit that moves with you on long days",
    "reinforced stitching at every stress point",
    "a weight you will forget you are carrying",
    "ventilation zones that dump heat on steep climbs",
    "reflective details for early starts and late finishes",
]
USES = [
    "day hikes",
    "multi-day treks",
    "trail runs",
    "city commutes",
    "alpine tours",
    "weekend camping",
    "travel",
    "rainy autumn walks",
]

PAGES = [
    (
        "About us",
        "<p>We are a small outdoor shop run by people who spend their weekends "
        "on the trail. Everything we sell has been tested in the mountains first.</p>",
    ),
    (
        "Shipping",
        "<p>Orders ship within 2 business days. Delivery in the EU takes 3 to 5 "
        "business days; shipping is free from 50 EUR.</p>",
    ),
    (
        "Frequently asked questions",
        "<p><strong>Do you ship outside the EU?</strong> Yes, to "
        "Switzerland, Norway and the United Kingdom.</p><p><strong>Can I exchange a size?"
        "</strong> Yes, free of charge within 30 days.</p>",
    ),
    (
        "Contact",
        "<p>Write to hello@example.com or call +49 30 1234567, Monday to Friday "
        "from 9:00 to 17:00.</p>",
    ),
]

ARTICLES = [
    (
        "How to choose trail running shoes",
        "<p>Fit comes first: leave a thumb's width in "
        "front of your toes. Then look at the outsole: deep lugs for mud, a flatter profile for "
        "hard-packed trails. Waterproof membranes keep feet dry but run warmer.</p>",
    ),
    (
        "Layering for cold weather hikes",
        "<p>A merino base layer, an insulating mid layer "
        "and a windproof shell let you adapt to any weather on the way up.</p>",
    ),
]

POLICIES = [
    (
        "REFUND_POLICY",
        "Refund policy",
        "<p>You can return any unworn item within 30 days "
        "of delivery for a full refund. Return shipping is free within the EU.</p>",
    ),
    (
        "PRIVACY_POLICY",
        "Privacy policy",
        "<p>We process your data only to fulfil your "
        "orders and answer your questions. We never sell personal data.</p>",
    ),
    (
        "TERMS_OF_SERVICE",
        "Terms of service",
        "<p>These terms govern purchases in our online store. Prices include VAT.</p>",
    ),
    (
        "SHIPPING_POLICY",
        "Shipping policy",
        "<p>We ship within 2 business days; delivery "
        "in the EU takes 3 to 5 business days. Shipping is free from 50 EUR.</p>",
    ),
    (
        "LEGAL_NOTICE",
        "Legal notice",
        "<p>Example Outdoor GmbH, Musterstraße 1, 10115 Berlin, Germany.</p>",
    ),
]
