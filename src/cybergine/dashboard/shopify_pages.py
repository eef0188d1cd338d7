"""The Shopify app's embedded admin: the page Shopify's admin frames at the app's root
(``/?shop=…&host=…&embedded=1``), its JSON endpoints (``/shopify/api/…``, authenticated
by App Bridge session tokens, no cookie), and the one-time link from it into the full
dashboard (``/shopify/sign-in/…``).

Only the root request Shopify's admin makes (``embedded=1`` with a ``shop``) reaches the
embedded page: every other request for ``/`` is the dashboard's overview, which sends a
signed-out browser to the sign-in page (``EmbeddedLaunchRoute``). The embedded page may be
framed by its own shop's admin and Shopify's (``frame-ancestors https://{shop}
https://admin.shopify.com``); every other page keeps ``frame-ancestors 'none'``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Match
from starlette.types import Scope

from cybergine.accounts.service import sessions
from cybergine.dashboard.auth_pages import _sign_in_response
from cybergine.dashboard.templating import static_assets, templates
from cybergine.errors import NotFound
from cybergine.privacy import audit
from cybergine.shopify import billing, embedded
from cybergine.shopify.models import ShopifyShop
from cybergine.shopify.shop_domains import shop_domain
from cybergine.web.access import public
from cybergine.web.deps import DatabaseDep, SessionDep, SettingsDep
from cybergine.web.middleware import CONTENT_SECURITY_POLICY

Authorization = Annotated[str | None, Header()]
SessionTokenAuth = Annotated[
    None, public("the embedded admin's requests carry App Bridge session tokens, verified here")
]
_LAUNCH_MARK = "embedded"


class EmbeddedLaunchRoute(APIRoute):
    """A route that answers only Shopify's admin opening the app: ``embedded=1`` and a
    ``shop`` in the query. Any other request passes on to the routes after it."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.NONE:
            return match, child
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get(_LAUNCH_MARK) == ["1"] and query.get("shop"):
            return match, child
        return Match.NONE, {}


launch_router = APIRouter(include_in_schema=False, route_class=EmbeddedLaunchRoute)
router = APIRouter(include_in_schema=False)


def embedded_policy(request: Request, domain: str) -> str:
    """The dashboard's CSP, with App Bridge's script allowed and framing by this shop."""
    settings = request.app.state.settings
    bridge = embedded.configured_origin(
        settings.shopify_app_bridge_url, "CYBERGINE_SHOPIFY_APP_BRIDGE_URL"
    )
    return (
        CONTENT_SECURITY_POLICY.replace("script-src 'self'", f"script-src 'self' {bridge}")
        .replace("connect-src 'self'", f"connect-src 'self' {bridge}")
        .replace("frame-ancestors 'none'", embedded.frame_ancestors(settings, domain))
    )


@launch_router.get("/", response_class=HTMLResponse)
async def embedded_app(
    request: Request,
    _public: Annotated[None, public("Shopify's admin opens it; its data needs session tokens")],
    settings: SettingsDep,
    shop: Annotated[str, Query(max_length=300)],
    # Shopify's base64 of the admin's host: App Bridge reads it from the URL itself.
    host: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    domain = shop_domain(shop)
    if not embedded.app_configured(settings):
        raise NotFound("The Shopify app is not configured on this server.")
    response = templates.TemplateResponse(
        request,
        "shopify_embedded.html",
        {
            "api_key": settings.shopify_api_key,
            "app_bridge_url": settings.shopify_app_bridge_url,
            "shop": domain,
            "script_url": static_assets.url_for("shopify_embedded.js"),
            "style_url": static_assets.url_for("app.css"),
        },
    )
    response.headers["content-security-policy"] = embedded_policy(request, domain)
    response.headers["cache-control"] = "no-store"
    return response


# --- JSON for the embedded page ---------------------------------------------------


class EmbedStateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: str = Field(max_length=16)


class SubscribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: str = Field(max_length=100)


async def _reloaded(session: AsyncSession, shop: ShopifyShop) -> ShopifyShop:
    row = await session.get(ShopifyShop, shop.id, populate_existing=True)
    if row is None:
        raise NotFound("This shop is no longer connected.")
    return row


@router.get("/shopify/api/status")
async def shop_status(
    _auth: SessionTokenAuth,
    database: DatabaseDep,
    settings: SettingsDep,
    authorization: Authorization = None,
) -> JSONResponse:
    shop = await embedded.authenticate(database, settings, authorization)
    async with database.transaction() as session:
        body = await embedded.status(session, settings, await _reloaded(session, shop))
    return JSONResponse(body)


@router.post("/shopify/api/embed-state")
async def embed_state(
    body: EmbedStateIn,
    _auth: SessionTokenAuth,
    database: DatabaseDep,
    settings: SettingsDep,
    authorization: Authorization = None,
) -> JSONResponse:
    shop = await embedded.authenticate(database, settings, authorization)
    async with database.transaction() as session:
        state = await embedded.record_embed_state(session, shop, body.state)
    return JSONResponse({"state": state.value})


@router.post("/shopify/api/subscribe")
async def subscribe(
    body: SubscribeIn,
    _auth: SessionTokenAuth,
    database: DatabaseDep,
    settings: SettingsDep,
    authorization: Authorization = None,
) -> JSONResponse:
    shop = await embedded.authenticate(database, settings, authorization)
    confirmation = await billing.subscribe(database, settings, shop, body.plan)
    return JSONResponse({"confirmation_url": confirmation})


@router.post("/shopify/api/dashboard-link")
async def dashboard_link(
    request: Request,
    _auth: SessionTokenAuth,
    database: DatabaseDep,
    settings: SettingsDep,
    authorization: Authorization = None,
) -> JSONResponse:
    shop = await embedded.authenticate(database, settings, authorization)
    async with database.transaction() as session:
        owner = await embedded.owner_to_sign_in(session, shop)
        url = embedded.sign_in_url(str(request.base_url), owner, shop)
    return JSONResponse({"url": url})


@router.get("/shopify/sign-in/{token}")
async def sign_in(
    _public: Annotated[None, public("a sealed one-time link from the embedded admin")],
    token: Annotated[str, Path(max_length=1000)],
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    opened = await embedded.open_sign_in(session, token)
    _, session_token = await sessions.create_session(
        session, user=opened.user, organisation_id=opened.organisation_id
    )
    await audit.record(
        session,
        action="auth.login.shopify",
        actor=audit.Actor.user(str(opened.user.id), email=opened.user.email),
        organisation_id=opened.organisation_id,
    )
    return _sign_in_response(settings, session_token, "/")
