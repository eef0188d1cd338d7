"""The storefront chat widget as a theme app extension's app embed.

The embed (``extensions/cybergine-chat/blocks/chat-embed.liquid``) reads two app-data
metafields on the shop's app installation: the assistant's widget key and the platform's
origin, which serves ``widget.js``. The platform writes them when it connects the shop, so
the merchant types nothing; the merchant only switches the embed on in the theme editor,
and ``theme_editor_link`` opens the editor with it ready to switch on. Pure: no settings,
no database.
"""

from __future__ import annotations

from urllib.parse import urlencode

from cybergine.shopify.shop_domains import shop_domain, shop_origin

# App-data metafields (owner: the AppInstallation), read in Liquid as
# ``app.metafields.<namespace>.<key>.value``.
METAFIELD_NAMESPACE = "cybergine"
WIDGET_KEY_METAFIELD = "widget_key"
PLATFORM_ORIGIN_METAFIELD = "platform_origin"

# The extension's handle is derived by Shopify CLI from its name ("Cybergine chat"); an
# app embed's handle is its block file's name without ".liquid".
EXTENSION_HANDLE = "cybergine-chat"
CHAT_EMBED_BLOCK = "chat-embed"


def theme_editor_link(shop: str, client_id: str, block_handle: str = CHAT_EMBED_BLOCK) -> str:
    """The theme editor of the shop's live theme, on App embeds, with the app's embed
    ``block_handle`` switched on for the merchant to save. ``shop`` must be a
    ``*.myshopify.com`` domain (InvalidInput otherwise)."""
    query = urlencode(
        {"context": "apps", "activateAppId": f"{client_id}/{block_handle}"},
        safe="/",
    )
    return f"{shop_origin(shop_domain(shop))}/admin/themes/current/editor?{query}"
