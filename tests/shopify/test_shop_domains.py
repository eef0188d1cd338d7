"""Shop domains: the one spelling we accept, and the hostile ones we refuse."""

from __future__ import annotations

import pytest

from cybergine.errors import InvalidInput
from cybergine.shopify.shop_domains import shop_domain, shop_domain_from_origin, shop_origin


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cybergine-demo.myshopify.com", "cybergine-demo.myshopify.com"),
        ("Fancy-Widgets.MyShopify.COM", "fancy-widgets.myshopify.com"),
        ("0shop.myshopify.com", "0shop.myshopify.com"),
        ("a.myshopify.com", "a.myshopify.com"),
        ("a" * 63 + ".myshopify.com", "a" * 63 + ".myshopify.com"),
        # Shopify's own rule lets a hyphen end the name and punycode-looking names in.
        ("xn--shop-.myshopify.com", "xn--shop-.myshopify.com"),
    ],
)
def test_a_shop_domain_is_accepted_in_lower_case(value: str, expected: str) -> None:
    assert shop_domain(value) == expected


HOSTILE = [
    "",
    "myshopify.com",
    ".myshopify.com",
    "-shop.myshopify.com",  # a name starts with a letter or a digit
    "shop_name.myshopify.com",
    "shop.name.myshopify.com",  # a sub-subdomain is not a shop
    "a" * 64 + ".myshopify.com",  # longer than a DNS label
    "shop.myshopify.com.",  # trailing dot
    "shop.myshopify.com:443",  # port
    "shop.myshopify.com/admin",  # path
    "shop.myshopify.com?x=1",
    "shop.myshopify.com#x",
    "user@shop.myshopify.com",  # userinfo
    "evil.test/x.myshopify.com",
    "evil.test#.myshopify.com",
    "evil.test?.myshopify.com",
    "evil.test\\.myshopify.com",
    "shop.myshopify.com.evil.test",
    "shop.myshopify.co",
    "shop.myshopify.io",  # Shopify's internal development domain
    "shop.shopify.com",
    "shopmyshopify.com",
    "https://shop.myshopify.com",  # an origin, not a domain
    "//shop.myshopify.com",
    " shop.myshopify.com",
    "shop.myshopify.com ",
    "shop.myshopify.com\n",  # "$" in a regex would match before this newline
    "shop\t.myshopify.com",
    "shop\x00.myshopify.com",
    "shop%2e.myshopify.com",
    "shop.myshopify%2ecom",
    "\u212aelvin.myshopify.com",  # the Kelvin sign lower-cases to an ASCII "k"
    "sh\u0131p.myshopify.com",  # dotless i
    "sh\u0430p.myshopify.com",  # Cyrillic a
    "shop\uff0emyshopify.com",  # fullwidth full stop
    "shop\u3002myshopify.com",  # ideographic full stop
    "shop.myshopify.com\u200b",  # zero-width space
    "\u0455hop.myshopify.com",  # Cyrillic dze, looks like s
    "xn--sho-5cd.myshopify.com.evil.test",
    "a" * 300,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        shop_domain(value, field="shop")
    assert refused.value.extra == {"field": "shop"}
    assert refused.value.detail.startswith("shop must be a shop's myshopify.com domain")


@pytest.mark.parametrize("value", [None, 42, b"shop.myshopify.com", ["shop.myshopify.com"]])
def test_a_value_that_is_not_text_is_refused(value: object) -> None:
    with pytest.raises(InvalidInput):
        shop_domain(value, field="X-Shopify-Shop-Domain")


def test_an_origin_gives_its_shop_and_back() -> None:
    shop = shop_domain_from_origin("https://Shop-1.myshopify.com", field="dest")
    assert shop == "shop-1.myshopify.com"
    assert shop_origin(shop) == "https://shop-1.myshopify.com"


@pytest.mark.parametrize(
    "value",
    [
        "http://shop.myshopify.com",
        "shop.myshopify.com",
        "https://shop.myshopify.com/",
        "https://shop.myshopify.com/admin",
        "https://shop.myshopify.com:8443",
        "https://user:pass@shop.myshopify.com",
        "https://evil.test/shop.myshopify.com",
        "HTTPS://shop.myshopify.com",
        None,
    ],
)
def test_an_origin_is_only_a_scheme_and_a_shop(value: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        shop_domain_from_origin(value, field="dest")
    assert refused.value.extra == {"field": "dest"}
