"""What the embedded admin (the app's page inside a shop's Shopify admin) shows and does.

The page itself is served by the dashboard (``dashboard/shopify_pages.py``); it holds no
cookie and no session of ours: each of its requests carries an App Bridge session token,
verified here (``authenticate``), which names the shop and so the organisation. This
module gathers the shop's state for the page (connection, catalogue sync, storefront
embed, plan and allowance), records the embed's state as App Bridge reported it, and makes
the one-time link that signs the shop's owner into the full dashboard.

The embed's state comes from App Bridge's ``shopify.app.extensions()`` (shopify.dev, App
Home "App API": a theme app extension's activations, each with its block ``handle`` and
``status`` active / available / unavailable, for the published theme), read by the page
in the merchant's browser: the app needs no ``read_themes`` scope for it. The page reports
it, and the dashboard shows the last report.

Sign-in link: sealed with the server key, valid two minutes, and single-use because it
names the owner's last sign-in, which using it changes. It is opened top-level, never
inside Shopify's frame, so the dashboard's cookie is set first-party.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import Membership, Role, User
from cybergine.accounts.tokens import constant_time_equal, keyed_hash
from cybergine.db.engine import Database
from cybergine.errors import Conflict, CybergineError, InvalidInput, NotFound
from cybergine.origins import origin_of
from cybergine.settings import Settings
from cybergine.shopify import billing, install, sync_status
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.shopify.plans import PLANS
from cybergine.shopify.session_tokens import (
    InvalidSessionToken,
    SessionToken,
    bearer_token,
    verify_session_token,
)
from cybergine.shopify.shop_domains import shop_domain
from cybergine.shopify.theme_embed import CHAT_EMBED_BLOCK, EXTENSION_HANDLE, theme_editor_link

SHOPIFY_ADMIN_ORIGIN = "https://admin.shopify.com"
SIGN_IN_LIFETIME = timedelta(minutes=2)
SIGN_IN_PATH = "/shopify/sign-in/"
_SIGN_IN_PURPOSE = "shopify-sign-in"


class EmbedState(enum.StrEnum):
    ACTIVE = "active"  # the chat embed is on in the published theme
    INACTIVE = "inactive"  # available (or unavailable) but not switched on
    UNKNOWN = "unknown"  # App Bridge could not tell


class SignInLinkUnusable(CybergineError):
    status = 410
    type_slug = "shopify-sign-in-link-unusable"
    title = "Sign-in link no longer valid"


def app_configured(settings: Settings) -> bool:
    return bool(settings.shopify_api_key) and settings.shopify_api_secret is not None


def _secrets(settings: Settings) -> list[str]:
    found = [settings.shopify_api_secret, settings.shopify_previous_api_secret]
    return [secret.get_secret_value() for secret in found if secret is not None]


def verify(settings: Settings, authorization: str | None) -> tuple[SessionToken, str]:
    """The verified session token of an ``Authorization: Bearer`` header, and the raw
    token (for the token exchange); InvalidSessionToken otherwise."""
    if not app_configured(settings):
        raise InvalidSessionToken("The Shopify app is not configured on this server.")
    raw = bearer_token(authorization)
    assert settings.shopify_api_key is not None
    verified = verify_session_token(
        raw, client_id=settings.shopify_api_key, secrets=_secrets(settings)
    )
    return verified, raw


async def authenticate(
    database: Database, settings: Settings, authorization: str | None
) -> ShopifyShop:
    """The installed shop a request of the embedded admin speaks for: its session token
    verified, the shop installed or reinstalled on its first request."""
    verified, raw = verify(settings, authorization)
    return await install.connected_shop(database, settings, verified, raw)


def configured_origin(url: str, setting: str) -> str:
    """The origin of a URL the operator configured (a setting's value)."""
    origin = origin_of(url)
    if origin is None:
        raise ValueError(f"{setting} is not an http(s) URL")
    return origin


def frame_ancestors(settings: Settings, domain: str) -> str:
    """The CSP directive that lets this shop's own admin (Shopify: ``https://{shop}``; the
    simulator's in tests and demos, from ``shopify_admin_url``) and Shopify's admin, and
    no one else, frame the page."""
    admin = settings.shopify_admin_url.format(shop=shop_domain(domain))
    return (
        f"frame-ancestors {configured_origin(admin, 'CYBERGINE_SHOPIFY_ADMIN_URL')} "
        f"{SHOPIFY_ADMIN_ORIGIN}"
    )


async def record_embed_state(session: AsyncSession, shop: ShopifyShop, state: str) -> EmbedState:
    try:
        value = EmbedState(state)
    except ValueError:
        raise InvalidInput(
            f"state is one of {', '.join(s.value for s in EmbedState)}.", field="state"
        ) from None
    row = await session.scalar(
        select(ShopifyShop).where(ShopifyShop.id == shop.id).with_for_update()
    )
    if row is not None:
        row.embed_state = value.value
        row.embed_checked_at = datetime.now(UTC)
    return value


def embed_summary(settings: Settings, shop: ShopifyShop) -> dict[str, Any]:
    return {
        "state": shop.embed_state or EmbedState.UNKNOWN.value,
        "checked_at": _iso(shop.embed_checked_at),
        "extension": EXTENSION_HANDLE,
        "block": CHAT_EMBED_BLOCK,
        "editor_url": theme_editor_link(shop.shop_domain, settings.shopify_api_key or "")
        if settings.shopify_api_key
        else None,
    }


async def status(session: AsyncSession, settings: Settings, shop: ShopifyShop) -> dict[str, Any]:
    """Everything the embedded page shows, as JSON."""
    allowance = await billing.allowance(session, shop)
    return {
        "shop": shop.shop_domain,
        "connection": {
            "status": shop.status.value,
            "installed_at": _iso(shop.installed_at),
            "token_valid_until": _iso(shop.access_token_expires_at),
            "refresh_valid_until": _iso(shop.refresh_token_expires_at),
            "scopes": [s for s in shop.scopes.split(",") if s],
        },
        "sync": await sync_summary(session, shop),
        "embed": embed_summary(settings, shop),
        "billing": {
            "plan": allowance.plan.name,
            "subscription_status": shop.subscription_status,
            "conversations_this_month": allowance.used,
            "conversations_per_month": allowance.limit,
            "limit_reached": allowance.reached,
            "test_charges": billing.test_charges(settings),
            "plans": [
                {
                    "name": plan.name,
                    "price": str(plan.price),
                    "currency": plan.currency,
                    "interval": plan.interval,
                    "conversations_per_month": plan.conversations_per_month,
                    "trial_days": plan.trial_days,
                }
                for plan in PLANS
            ],
        },
    }


async def sync_summary(session: AsyncSession, shop: ShopifyShop) -> dict[str, Any]:
    """The catalogue sync as the page shows it (``sync_status``), with a sentence."""
    found = await sync_status.sync_status(session, shop)
    latest, completed = found["latest"], found["last_completed"]
    products = found["products"]
    if latest is None:
        state, label = "not_synced", "Not synced yet."
    elif found["running"]:
        state = "running"
        label = f"Syncing: {latest['products_written']} products so far."
    elif latest["status"] == "failed":
        state = "failed"
        label = f"The last sync failed: {latest['error'] or 'no reason given'}."
    else:
        state, label = "synced", f"{products} products in the catalogue."
    if completed is not None and completed["finished_at"]:
        label += f" Last complete sync: {completed['finished_at'][:16].replace('T', ' ')} UTC."
    return {"state": state, "label": label, "products": products, "detail": found}


# --- one-time sign-in into the full dashboard --------------------------------------


async def owner_to_sign_in(session: AsyncSession, shop: ShopifyShop) -> User:
    """The shop's owner, whom "Open full dashboard" signs in. Whoever may open the app in
    the shop's admin gets that account, so only while it belongs to this shop's
    organisation alone: an account that also holds other organisations signs in with its
    own password."""
    owner = await install.organisation_owner(session, shop)
    if owner is None:
        raise NotFound("This shop's organisation has no owner to sign in.")
    if await _other_organisations(session, owner, shop):
        raise Conflict(
            "The shop owner's Cybergine account also belongs to other organisations, so it "
            "is not signed in from the Shopify admin: sign in with its e-mail address and "
            "password instead."
        )
    return owner


async def _other_organisations(session: AsyncSession, user: User, shop: ShopifyShop) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.user_id == user.id, Membership.organisation_id != shop.organisation_id)
    )
    return int(count or 0)


@dataclass(frozen=True)
class SignIn:
    user: User
    organisation_id: uuid.UUID


def sign_in_url(origin: str, owner: User, shop: ShopifyShop, *, now: datetime | None = None) -> str:
    """The link, on ``origin``: where the embedded page reached the platform, so the
    dashboard's cookie is set for the origin the merchant is on."""
    at = now or datetime.now(UTC)
    payload = json.dumps(
        {
            "u": str(owner.id),
            "o": str(shop.organisation_id),
            "s": str(shop.id),
            "x": int((at + SIGN_IN_LIFETIME).timestamp()),
            "l": _login_mark(owner),
        },
        separators=(",", ":"),
    )
    body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    token = f"{body}.{keyed_hash(_SIGN_IN_PURPOSE, body)}"
    return f"{origin.rstrip('/')}{SIGN_IN_PATH}{token}"


async def open_sign_in(session: AsyncSession, token: str) -> SignIn:
    """The owner and organisation a sign-in link is for, if it is still usable; the
    owner's row stays locked until commit, so the link works once."""
    unusable = SignInLinkUnusable(
        "This sign-in link is no longer valid. Open Cybergine from your Shopify admin and "
        'choose "Open full dashboard" again.'
    )
    body, _, seal = token.partition(".")
    if not body or not constant_time_equal(seal, keyed_hash(_SIGN_IN_PURPOSE, body)):
        raise unusable
    try:
        values = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        user_id = uuid.UUID(values["u"])
        organisation_id = uuid.UUID(values["o"])
        shop_id = uuid.UUID(values["s"])
        expires = datetime.fromtimestamp(int(values["x"]), UTC)
        mark = int(values["l"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise unusable from None
    if expires <= datetime.now(UTC):
        raise unusable
    user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None or _login_mark(user) != mark:
        raise unusable
    shop = await session.scalar(
        select(ShopifyShop).where(
            ShopifyShop.id == shop_id,
            ShopifyShop.organisation_id == organisation_id,
            ShopifyShop.status == ShopStatus.INSTALLED,
        )
    )
    owner = await session.scalar(
        select(Membership).where(
            Membership.organisation_id == organisation_id,
            Membership.user_id == user_id,
            Membership.role == Role.OWNER,
        )
    )
    if shop is None or owner is None or await _other_organisations(session, user, shop):
        raise unusable
    return SignIn(user=user, organisation_id=organisation_id)


def _login_mark(user: User) -> int:
    last = user.last_login_at
    return int(last.timestamp() * 1_000_000) if last is not None else 0


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def dashboard_panel(
    session: AsyncSession, settings: Settings, organisation_id: uuid.UUID
) -> dict[str, Any] | None:
    """The Shopify part of the dashboard's overview, for an organisation with a shop."""
    shop = await sync_status.shop_of(session, organisation_id)
    if shop is None:
        return None
    allowance = await billing.allowance(session, shop)
    return {
        "shop": shop.shop_domain,
        "embed": embed_summary(settings, shop),
        "plan": allowance.plan.name,
        "used": allowance.used,
        "limit": allowance.limit,
        "limit_reached": allowance.reached,
    }
