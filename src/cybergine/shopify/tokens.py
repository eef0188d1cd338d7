"""A shop's offline access token: obtained by token exchange, kept fresh by refresh.

Shopify-managed installation gives the app no OAuth redirect: the embedded admin's first
request carries an App Bridge session token, which the app trades at the shop's
``/admin/oauth/access_token`` (``grant_type`` token-exchange, ``subject_token_type``
id_token, ``requested_token_type`` offline-access-token) for an offline token. With
``expiring=1`` the token lives an hour (``expires_in``) and comes with a refresh token
(``refresh_token``, ``refresh_token_expires_in``); public apps must use expiring tokens
from 2027-01-01.

The refresh token rotates: each refresh answers a new pair and retires the old refresh
token once the new one is used. Two processes refreshing at once would each spend the
same refresh token and one of them would keep a pair Shopify already retired, so a refresh
runs under a per-shop advisory lock, in a transaction of its own that commits the new
pair before anyone uses it; a process that waited for the lock reads the pair the other
one stored instead of refreshing again. Both tokens are stored Fernet-encrypted
(``ShopifyShop``'s ``EncryptedString`` columns).

The token endpoint is the operator's (``CYBERGINE_SHOPIFY_ADMIN_URL``, Shopify itself or
the simulator) on a shop domain that passed ``shop_domains.shop_domain``, so the request
uses an ordinary client (CONTRIBUTING, "Outbound requests").
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.db.engine import Database
from cybergine.errors import CybergineError
from cybergine.settings import Settings
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.shopify.oauth_names import (
    ID_TOKEN_TYPE,
    OFFLINE_TOKEN_TYPE,
    REFRESH_GRANT,
    TOKEN_EXCHANGE_GRANT,
    TOKEN_PATH,
)
from cybergine.shopify.session_tokens import InvalidSessionToken
from cybergine.shopify.shop_domains import shop_domain
from cybergine.tls import client_context

log = structlog.get_logger(__name__)

# Refreshed this long before it expires, so that a token handed out is still good for
# the calls (a bulk operation's polling, a page of GraphQL) its caller makes with it.
REFRESH_MARGIN = timedelta(minutes=5)
REQUEST_TIMEOUT_SECONDS = 15.0
# Key space of the advisory lock that serialises one shop's refreshes ("shtk").
_LOCK_SPACE = 0x7368746B


class ShopNotConnected(CybergineError):
    """The shop is not (or no longer) connected: unknown, uninstalled, or its tokens gone."""

    status = 409
    type_slug = "shopify-shop-not-connected"
    title = "Shop not connected"


class TokenRefused(CybergineError):
    """Shopify refused a refresh: the refresh token was revoked or expired, or the app
    was uninstalled. Only the merchant opening the app again reconnects the shop."""

    status = 409
    type_slug = "shopify-token-refused"
    title = "Shopify refused the shop's token"


class ShopifyUnavailable(CybergineError):
    """Shopify's token endpoint could not be reached or failed; trying later may work."""

    status = 503
    type_slug = "shopify-unavailable"
    title = "Shopify unavailable"


@dataclass(frozen=True)
class Grant:
    """What the token endpoint answered, with lifetimes made absolute."""

    access_token: str
    access_token_expires_at: datetime | None
    refresh_token: str | None
    refresh_token_expires_at: datetime | None
    scopes: str


def token_url(settings: Settings, domain: str) -> str:
    return settings.shopify_admin_url.format(shop=shop_domain(domain)) + TOKEN_PATH


def _credentials(settings: Settings) -> dict[str, str]:
    if not settings.shopify_api_key or settings.shopify_api_secret is None:
        raise ShopifyUnavailable(
            "The Shopify app is not configured: set CYBERGINE_SHOPIFY_API_KEY and "
            "CYBERGINE_SHOPIFY_API_SECRET."
        )
    return {
        "client_id": settings.shopify_api_key,
        "client_secret": settings.shopify_api_secret.get_secret_value(),
    }


async def exchange_session_token(
    settings: Settings,
    domain: str,
    session_token: str,
    *,
    client: httpx.AsyncClient | None = None,
) -> Grant:
    """An expiring offline token for ``domain`` in return for a verified session token of
    that shop. A refusal answers like an invalid session token (401 asking App Bridge for
    a fresh one): Shopify refuses a token it finds expired or not its own."""
    body = {
        **_credentials(settings),
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": session_token,
        "subject_token_type": ID_TOKEN_TYPE,
        "requested_token_type": OFFLINE_TOKEN_TYPE,
        "expiring": "1",
    }
    status, answer = await _post(settings, domain, body, client=client)
    if status in (400, 401, 403):
        raise InvalidSessionToken(
            f"Shopify refused to exchange the session token ({_error_name(answer)})."
        )
    return _grant(status, answer)


async def refresh(
    settings: Settings,
    domain: str,
    refresh_token: str,
    *,
    client: httpx.AsyncClient | None = None,
) -> Grant:
    """A new token pair for the refresh token; the old refresh token is retired by Shopify
    once the new pair is used. Prefer :func:`access_token`, which serialises refreshes."""
    body = {**_credentials(settings), "grant_type": REFRESH_GRANT, "refresh_token": refresh_token}
    status, answer = await _post(settings, domain, body, client=client)
    if status in (400, 401, 403):
        raise TokenRefused(
            f"Shopify refused to refresh the token of {domain} ({_error_name(answer)}): "
            "the app was uninstalled or its access revoked. Opening the app from the "
            "shop's Shopify admin connects it again."
        )
    return _grant(status, answer)


async def access_token(
    database: Database,
    shop: ShopifyShop | uuid.UUID,
    settings: Settings,
    *,
    now: datetime | None = None,
    rejected: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> str:
    """A valid offline access token of ``shop`` (a row, or its id), refreshed first when
    it expires within ``REFRESH_MARGIN``, or when it is ``rejected``: the token Shopify
    just answered 401 to (it can end before its time). Several callers rejecting the same
    token refresh once: the first refreshes, the others find the new one. The refresh
    commits in a transaction of its own, whatever becomes of the caller's, so a rotated
    refresh token is never lost. ShopNotConnected, TokenRefused or ShopifyUnavailable
    otherwise."""
    shop_id = shop if isinstance(shop, uuid.UUID) else shop.id
    async with database.autocommit() as session:
        current = await _read(session, shop_id)
        token = _still_valid(current, now)
        if token is not None and token != rejected:
            return token
    async with database.transaction() as session:
        await session.execute(select(func.pg_advisory_xact_lock(_LOCK_SPACE, _lock_key(shop_id))))
        # Read again under the lock: whoever held it may have refreshed already.
        current = await _read(session, shop_id)
        token = _still_valid(current, now)
        if token is not None and token != rejected:
            return token
        if current.refresh_token is None or _expired(current.refresh_token_expires_at, now):
            raise TokenRefused(
                f"The token of {current.shop_domain} expired and cannot be refreshed. "
                "Opening the app from the shop's Shopify admin connects it again."
            )
        grant = await refresh(settings, current.shop_domain, current.refresh_token, client=client)
        store_grant(current, grant)
        log.info("shopify token refreshed", shop_id=str(shop_id))
        return grant.access_token


def store_grant(shop: ShopifyShop, grant: Grant) -> None:
    """Keeps a pair as one: a refresh that answered no new refresh token keeps the old."""
    shop.access_token = grant.access_token
    shop.access_token_expires_at = grant.access_token_expires_at
    if grant.refresh_token is not None:
        shop.refresh_token = grant.refresh_token
        shop.refresh_token_expires_at = grant.refresh_token_expires_at
    if grant.scopes:
        shop.scopes = grant.scopes


async def _read(session: AsyncSession, shop_id: uuid.UUID) -> ShopifyShop:
    shop = await session.scalar(
        select(ShopifyShop)
        .where(ShopifyShop.id == shop_id)
        .execution_options(populate_existing=True)
    )
    if shop is None or shop.status != ShopStatus.INSTALLED:
        raise ShopNotConnected(
            "This shop is not connected to Cybergine: it uninstalled the app, or never "
            "installed it."
        )
    return shop


def _still_valid(shop: ShopifyShop, now: datetime | None) -> str | None:
    if shop.access_token is None:
        raise ShopNotConnected(f"{shop.shop_domain} has no access token: open the app again.")
    expires = shop.access_token_expires_at
    if expires is None or expires - REFRESH_MARGIN > (now or datetime.now(UTC)):
        return shop.access_token
    return None


def _expired(moment: datetime | None, now: datetime | None) -> bool:
    return moment is not None and moment <= (now or datetime.now(UTC))


def _lock_key(shop_id: uuid.UUID) -> int:
    # The low 31 bits of the id's random tail: a collision only makes two shops'
    # refreshes wait for each other.
    return shop_id.int & 0x7FFFFFFF


async def _post(
    settings: Settings,
    domain: str,
    body: Mapping[str, str],
    *,
    client: httpx.AsyncClient | None,
) -> tuple[int, Any]:
    url = token_url(settings, domain)
    own = client is None
    http = client or httpx.AsyncClient(
        timeout=REQUEST_TIMEOUT_SECONDS, follow_redirects=False, verify=client_context()
    )
    try:
        response = await http.post(url, json=dict(body), headers={"Accept": "application/json"})
    except httpx.HTTPError as error:
        raise ShopifyUnavailable(
            f"Shopify's token endpoint for {domain} could not be reached ({type(error).__name__})."
        ) from None
    finally:
        if own:
            await http.aclose()
    try:
        answer = response.json()
    except ValueError:
        answer = None
    return response.status_code, answer


def _error_name(answer: Any) -> str:
    if isinstance(answer, dict):
        for key in ("error", "errors"):
            value = answer.get(key)
            if isinstance(value, str) and value:
                # Shopify's error codes are short; anything longer is not shown as is.
                return value[:80]
    return "no reason given"


def _grant(status: int, answer: Any) -> Grant:
    if status != 200 or not isinstance(answer, dict):
        raise ShopifyUnavailable(f"Shopify's token endpoint answered {status}; trying later.")
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise ShopifyUnavailable("Shopify's token endpoint answered no access token.")
    at = datetime.now(UTC)
    refresh_token = answer.get("refresh_token")
    scope = answer.get("scope")
    return Grant(
        access_token=token,
        access_token_expires_at=_after(at, answer.get("expires_in")),
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        refresh_token_expires_at=_after(at, answer.get("refresh_token_expires_in")),
        scopes=scope if isinstance(scope, str) else "",
    )


def _after(at: datetime, seconds: object) -> datetime | None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        return None
    return at + timedelta(seconds=seconds)
