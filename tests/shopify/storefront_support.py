"""The platform as a shop's storefront meets it: a live server with its in-process worker
whose public URL is its own address (so the app metafields name it as the origin of
``widget.js``), known to the simulator as the embedded app and its webhook endpoint, and
a simulated shop stocked with the catalogue's trail shoes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from starlette.types import ASGIApp, Receive, Scope, Send

from cybergine.settings import Settings
from cybergine.shopify.simulator import ShopifySimulator
from tests.support.catalog import SHOES
from tests.support.server import LiveServer

T = TypeVar("T")


class _Later:
    """An ASGI app given once the server's address (and so the app's settings) is known."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@contextmanager
def storefront_platform(settings: Settings, shopify: ShopifySimulator) -> Iterator[LiveServer]:
    from cybergine.app import create_app

    later = _Later()
    server = LiveServer(later)
    later.app = create_app(
        # The sync looks at its bulk operation often: the test waits for nothing longer.
        settings.model_copy(update={"public_url": server.url, "shopify_bulk_poll_seconds": 0.2}),
        run_worker=True,
    )
    with server:
        shopify.app_url = server.url
        shopify.webhooks.url = f"{server.url}/webhooks/shopify"
        yield server


def shop_products() -> list[dict[str, Any]]:
    """The trail shoes as the shop's REST products (the shop sells in euros)."""
    return [
        {k: v for k, v in shoe.items() if k not in ("currency", "collections")}
        for shoe in SHOES.values()
        if shoe["currency"] == "EUR"
    ]


def eventually(probe: Callable[[], T | None], *, what: str, seconds: float = 60) -> T:
    """``probe``'s first true answer, asked until the deadline (the worker's jobs finish
    when they finish: no fixed wait)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {seconds} s")
