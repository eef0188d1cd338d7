"""A simulated shop's storefront: ``GET /shops/{shop}/storefront``.

The page a shopper sees, with what Shopify adds to every storefront page for the app:
each app embed the merchant switched on in the published theme (``Shop.app_embeds``,
the control API's ``app-extensions``), rendered from the theme app extension's own block
(``extensions/cybergine-chat/blocks/<handle>.liquid``) with the app's ``app`` Liquid
object, its app-data metafields. An embed switched off, or one whose metafields are not
set, adds nothing, as on Shopify. So the platform's real ``widget.js`` loads here exactly
when it would on a real storefront.

Liquid is rendered with python-liquid (a development dependency, as the simulator is a
development tool), with Shopify's ``{% schema %}`` tag, which renders nothing.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cybergine.shopify.simulator.metafields import values_by_namespace
from cybergine.shopify.simulator.store import Shop
from cybergine.shopify.theme_embed import EXTENSION_HANDLE

if TYPE_CHECKING:
    from liquid import Environment

# The repository's theme app extension, as `shopify app deploy` bundles it.
EXTENSION_DIR = Path(__file__).resolve().parents[4] / "extensions" / EXTENSION_HANDLE
PRODUCTS_SHOWN = 12


def block_source(handle: str, extension_dir: Path = EXTENSION_DIR) -> str:
    """The Liquid of the extension's block ``handle`` (FileNotFoundError when absent)."""
    return (extension_dir / "blocks" / f"{handle}.liquid").read_text(encoding="utf-8")


def liquid_environment() -> Environment:
    """A Liquid environment that knows Shopify's ``{% schema %}`` (a block's settings for
    the theme editor, nothing on the storefront)."""
    from liquid import Environment
    from liquid.ast import Node
    from liquid.exceptions import LiquidSyntaxError
    from liquid.stream import TokenStream
    from liquid.tag import Tag
    from liquid.token import TOKEN_EOF, TOKEN_TAG

    class SchemaNode(Node):
        __slots__ = ()

        def render_to_output(self, context: object, buffer: object) -> int:
            return 0

        def children(self, *args: object, **kwargs: object) -> list[Any]:
            return []

    class SchemaTag(Tag):
        name = "schema"
        end = "endschema"

        def parse(self, stream: TokenStream) -> Node:
            token = stream.eat(TOKEN_TAG)
            while not (stream.current.kind == TOKEN_TAG and stream.current.value == self.end):
                if stream.current.kind == TOKEN_EOF:
                    raise LiquidSyntaxError("schema tag was never closed", token=token)
                next(stream)
            return SchemaNode(token)

    environment = Environment()
    environment.add_tag(SchemaTag)
    return environment


def render_app_embed(source: str, metafields: dict[str, dict[str, str]]) -> str:
    """An app embed block as Shopify renders it: ``app.metafields.<namespace>.<key>``
    holding each metafield with its ``value``."""
    app = {
        "metafields": {
            namespace: {key: {"value": value} for key, value in keys.items()}
            for namespace, keys in metafields.items()
        }
    }
    return liquid_environment().from_string(source).render(app=app).strip()


def storefront_page(shop: Shop, extension_dir: Path = EXTENSION_DIR) -> str:
    with shop.lock:
        switched_on = [handle for handle, active in shop.app_embeds.items() if active]
        products = [p for p in shop.products.values() if p.status.upper() == "ACTIVE"][
            :PRODUCTS_SHOWN
        ]
        rows = "".join(
            f"<li>{html.escape(p.title)}"
            + (f": {html.escape(p.variants[0].price)} {shop.currency}" if p.variants else "")
            + "</li>"
            for p in products
        )
    metafields = values_by_namespace(shop)
    embeds = "\n".join(
        render_app_embed(block_source(handle, extension_dir), metafields) for handle in switched_on
    )
    name = html.escape(shop.name)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{name}</title></head><body>"
        f"<header><h1>{name}</h1></header>"
        f"<main><h2>Products</h2><ul>{rows or '<li>No products yet.</li>'}</ul></main>"
        f"{embeds}</body></html>"
    )
