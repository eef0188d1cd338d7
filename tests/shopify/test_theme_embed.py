"""The theme-editor deep link that switches the storefront chat embed on."""

from __future__ import annotations

import pytest

from cybergine.errors import InvalidInput
from cybergine.shopify.theme_embed import CHAT_EMBED_BLOCK, theme_editor_link

CLIENT_ID = "a61950a2cbd5f32876b0b55587ec7a27"


def test_the_link_opens_the_live_themes_app_embeds_with_the_chat_embed_to_activate() -> None:
    assert theme_editor_link("cybergine-demo.myshopify.com", CLIENT_ID, CHAT_EMBED_BLOCK) == (
        "https://cybergine-demo.myshopify.com/admin/themes/current/editor"
        f"?context=apps&activateAppId={CLIENT_ID}/chat-embed"
    )


def test_the_block_defaults_to_the_chat_embed_and_the_shop_to_its_one_spelling() -> None:
    assert theme_editor_link("Cybergine-Demo.myshopify.com", CLIENT_ID) == (
        "https://cybergine-demo.myshopify.com/admin/themes/current/editor"
        f"?context=apps&activateAppId={CLIENT_ID}/chat-embed"
    )


@pytest.mark.parametrize(
    "shop",
    [
        "evil.example",
        "shop.myshopify.com.evil.example",
        "evil.example/x.myshopify.com",
        "https://cybergine-demo.myshopify.com",
        "",
    ],
)
def test_a_shop_that_is_not_a_myshopify_domain_gets_no_link(shop: str) -> None:
    with pytest.raises(InvalidInput):
        theme_editor_link(shop, CLIENT_ID)
