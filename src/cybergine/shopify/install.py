"""Shopify-managed installation: the first request of a shop we do not know connects it.

Shopify installs the app itself (the scopes are in ``shopify.app.toml``) and opens it in
the merchant's admin. The embedded page's first authenticated request carries a verified
session token for the shop; if the shop has no live token here, the platform
1. trades the session token for an expiring offline token (``tokens``),
2. reads the shop's name and owner's e-mail from the GraphQL Admin API (the catalogue's
   currency comes with the sync),
3. creates the organisation named after the shop, with the shop owner (by the shop's
   e-mail) as its owner, links the ``ShopifyShop`` row, audits it and asks for the first
   full sync of the catalogue and content (``sync.request_sync``),
4. makes sure the organisation has an assistant answering on the shop's storefront (its
   myshopify.com origin and primary domain allowed) and asks for the app metafields that
   tell the storefront's chat embed which widget to load (``storefront_embed``).

The owner needs no password to start: the embedded admin's "Open full dashboard" signs
them in (``embedded``), and the welcome e-mail says how to choose a password for signing
in directly. An address that already has an account becomes the owner of the new
organisation beside its others.

A reinstall (the app uninstalled, ``shop/redact`` not yet arrived, 48 hours) finds the
shop's row and restores it and its organisation, with everything they held. After
``shop/redact`` the row is gone and an install starts afresh.

External calls run outside any transaction; the write is one short transaction under a
per-domain advisory lock, so two first requests at once create one organisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import Membership, Organisation, Role, User
from cybergine.accounts.service.organisations import create_organisation
from cybergine.accounts.service.users import (
    clean_name,
    create_user,
    find_user_by_email,
    normalise_email,
)
from cybergine.accounts.tokens import new_token
from cybergine.db.engine import Database
from cybergine.errors import InvalidInput
from cybergine.mail.service import queue_email
from cybergine.privacy import audit
from cybergine.settings import Settings
from cybergine.shopify import billing, storefront_embed, sync, tokens
from cybergine.shopify.admin_api import AdminApiError, AdminClient
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.shopify.session_tokens import SessionToken
from cybergine.shopify.shop_domains import shop_domain
from cybergine.shopify.uninstall import restore_shop

log = structlog.get_logger(__name__)

# What an install needs of the shop: its name names the organisation, its e-mail is the
# shop owner's (Shopify writes to the owner there), its primary domain is where its
# storefront (and the chat widget) may also be served.
INSTALL_SHOP_QUERY = """
query InstallShop {
  shop { name email primaryDomain { url } }
}
"""
AUDIT_ACTOR = audit.Actor.system("shopify")
# Key space of the advisory lock that serialises one domain's installs ("shin").
_LOCK_SPACE = 0x7368696E
_ORGANISATION_NAME_LENGTH = 200


@dataclass(frozen=True)
class ShopProfile:
    name: str
    email: str
    primary_domain_url: str | None = None


async def connected_shop(
    database: Database,
    settings: Settings,
    verified: SessionToken,
    raw_session_token: str,
) -> ShopifyShop:
    """The installed shop the session token speaks for, installing or reinstalling it
    first when it has no live token here. ``verified`` must come from
    ``session_tokens.verify_session_token`` of ``raw_session_token``."""
    domain = shop_domain(verified.shop)
    async with database.autocommit() as session:
        shop = await find_shop(session, domain)
    if shop is not None and shop.status == ShopStatus.INSTALLED and shop.access_token:
        return shop
    grant = await tokens.exchange_session_token(settings, domain, raw_session_token)
    profile = await read_profile(settings, domain, grant.access_token)
    async with database.transaction() as session:
        return await _install(session, settings, domain, grant, profile)


async def find_shop(session: AsyncSession, domain: str) -> ShopifyShop | None:
    return await session.scalar(
        select(ShopifyShop)
        .where(ShopifyShop.shop_domain == shop_domain(domain))
        .execution_options(populate_existing=True)
    )


async def read_profile(settings: Settings, domain: str, access_token: str) -> ShopProfile:
    client = AdminClient(settings, domain, access_token)
    try:
        data = await client.query(INSTALL_SHOP_QUERY)
    except AdminApiError as error:
        raise tokens.ShopifyUnavailable(
            f"Shopify did not answer for the shop {domain}: {error.message}"
        ) from None
    finally:
        await client.aclose()
    shop = data.get("shop")
    if not isinstance(shop, dict):
        raise tokens.ShopifyUnavailable(f"Shopify answered no shop for {domain}.")
    name = shop.get("name")
    email = shop.get("email")
    primary = (shop.get("primaryDomain") or {}).get("url")
    return ShopProfile(
        name=name if isinstance(name, str) and name.strip() else domain,
        email=email if isinstance(email, str) else "",
        primary_domain_url=primary if isinstance(primary, str) else None,
    )


async def _install(
    session: AsyncSession,
    settings: Settings,
    domain: str,
    grant: tokens.Grant,
    profile: ShopProfile,
) -> ShopifyShop:
    await session.execute(select(func.pg_advisory_xact_lock(_LOCK_SPACE, func.hashtext(domain))))
    shop = await find_shop(session, domain)
    now = datetime.now(UTC)
    if shop is not None and shop.status == ShopStatus.INSTALLED and shop.access_token:
        # Another request installed it while this one exchanged its token.
        return shop
    if shop is not None:
        reinstalled = shop.status == ShopStatus.UNINSTALLED
        shop.installed_at = now if reinstalled else shop.installed_at or now
        if reinstalled and shop.subscription_status is not None:
            # Shopify cancels an app's subscriptions when it is uninstalled (and the
            # webhook saying so found the shop gone): a reinstall starts on the free plan.
            shop.subscription_status = billing.CANCELLED
        tokens.store_grant(shop, grant)
        await restore_shop(session, shop)
        # What changed in the shop while the app was away is read again.
        await sync.request_sync(session, shop)
        await storefront_embed.open_storefront(
            session, shop, await organisation_owner(session, shop), profile.primary_domain_url
        )
        await audit.record(
            session,
            action="shopify.shop.reinstalled" if reinstalled else "shopify.shop.reconnected",
            actor=AUDIT_ACTOR,
            organisation_id=shop.organisation_id,
            target_type="shopify_shop",
            target_id=str(shop.id),
        )
        log.info("shopify shop reinstalled", shop_id=str(shop.id))
        return shop
    organisation = await create_organisation(session, name=_organisation_name(profile, domain))
    owner, new_owner = await _owner(session, profile, domain)
    session.add(Membership(organisation_id=organisation.id, user_id=owner.id, role=Role.OWNER))
    shop = ShopifyShop(
        organisation_id=organisation.id,
        shop_domain=domain,
        status=ShopStatus.INSTALLED,
        installed_at=now,
    )
    tokens.store_grant(shop, grant)
    session.add(shop)
    await session.flush()
    # The catalogue, pages and policies: the assistant answers from them.
    await sync.request_sync(session, shop)
    await storefront_embed.open_storefront(session, shop, owner, profile.primary_domain_url)
    await audit.record(
        session,
        action="shopify.shop.installed",
        actor=AUDIT_ACTOR,
        organisation_id=organisation.id,
        target_type="shopify_shop",
        target_id=str(shop.id),
        details={"owner_id": str(owner.id), "new_owner": new_owner},
    )
    await _welcome(session, settings, owner, organisation, new_owner=new_owner)
    log.info("shopify shop installed", shop_id=str(shop.id), organisation_id=str(organisation.id))
    return shop


def _organisation_name(profile: ShopProfile, domain: str) -> str:
    try:
        return clean_name(profile.name[:_ORGANISATION_NAME_LENGTH], what="the shop's name")
    except InvalidInput:
        return domain


async def _owner(session: AsyncSession, profile: ShopProfile, domain: str) -> tuple[User, bool]:
    """The shop owner's account, made when the address has none (with a password no one
    knows, until the owner chooses one)."""
    try:
        email = normalise_email(profile.email)
    except InvalidInput:
        raise tokens.ShopifyUnavailable(
            f"Shopify gave no valid owner e-mail address for {domain}; the shop cannot be "
            "connected until it has one."
        ) from None
    user = await find_user_by_email(session, email)
    if user is not None:
        return user, False
    user = await create_user(
        session, email=email, name=_organisation_name(profile, domain), password=new_token()
    )
    return user, True


async def _welcome(
    session: AsyncSession,
    settings: Settings,
    owner: User,
    organisation: Organisation,
    *,
    new_owner: bool,
) -> None:
    sign_in = (
        f"To sign in directly, choose a password first: {settings.public_url}/password/forgot\n"
        if new_owner
        else f"Sign in as usual: {settings.public_url}/login\n"
    )
    await queue_email(
        session,
        to=owner.email,
        subject=f"{organisation.name} is connected to Cybergine",
        body=(
            f"Your Shopify store {organisation.name} installed Cybergine, and you are the "
            "owner of its organisation.\n\n"
            'Open Cybergine from your Shopify admin (Apps → Cybergine) and choose "Open '
            'full dashboard" to manage assistants, knowledge and conversations.\n'
            f"{sign_in}\n"
            "If you did not install the app, uninstall it from your Shopify admin."
        ),
    )


async def organisation_owner(session: AsyncSession, shop: ShopifyShop) -> User | None:
    """The owner the embedded admin signs into the full dashboard: the owner with the
    oldest membership of the shop's organisation."""
    result = await session.execute(
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == shop.organisation_id, Membership.role == Role.OWNER)
        .order_by(Membership.created_at, Membership.id)
        .limit(1)
    )
    return result.scalar_one_or_none()
