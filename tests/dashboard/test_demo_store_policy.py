"""The demo storefront's content policy: product images may come from any https origin (a
shop's CDN, as on a real storefront, for the chat widget's product cards); every other
directive is the dashboard's own."""

from __future__ import annotations

from cybergine.db.engine import Database
from cybergine.demo import seed_demo
from cybergine.web.middleware import CONTENT_SECURITY_POLICY
from tests.support.server import LiveServer


def _directives(policy: str) -> dict[str, str]:
    return {d.split(" ", 1)[0]: d for d in (p.strip() for p in policy.split(";")) if d}


async def test_the_storefront_allows_https_images_and_nothing_more(
    live_server: LiveServer, database: Database
) -> None:
    async with database.transaction() as session:
        await seed_demo(session)

    response = live_server.client().get("/demo/store")

    assert response.status_code == 200, response.text
    storefront = _directives(response.headers["content-security-policy"])
    dashboard = _directives(CONTENT_SECURITY_POLICY)
    assert storefront.pop("img-src") == "img-src 'self' data: https:"
    dashboard.pop("img-src")
    assert storefront == dashboard
    assert live_server.client().get("/login").headers["content-security-policy"] == (
        CONTENT_SECURITY_POLICY
    )
