"""The embedded admin over real HTTP, against the Shopify simulator: the page Shopify's
admin frames at the app's root (and only that request), its framing policy per shop, the
session-token API behind it, the first install and a reinstall, and the one-time way into
the full dashboard."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from cybergine.accounts.auth import SESSION_COOKIE
from cybergine.accounts.models import Membership, Organisation, OrganisationStatus, Role, User
from cybergine.db.engine import Database
from cybergine.mail.models import OutboundEmail
from cybergine.privacy.audit import AuditEvent
from cybergine.settings import Settings
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.shopify.session_tokens import RETRY_INVALID_SESSION_HEADER
from cybergine.shopify.simulator import ShopifySimulator
from tests.shopify.app_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_SHOP,
    SHOP,
    settings,
    shopify,
)
from tests.support.factories import make_organisation
from tests.support.jobs import run_jobs
from tests.support.server import TLS, LiveServer

__all__ = ["settings", "shopify"]

STATUS = "/shopify/api/status"


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=live_server.url, timeout=20, verify=TLS, follow_redirects=False
    ) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def launch(http: httpx.Client, shop: str = SHOP, **extra: str) -> httpx.Response:
    return http.get("/", params={"embedded": "1", "shop": shop, "host": "YWRtaW4", **extra})


def frame_ancestors(response: httpx.Response) -> str:
    policy = response.headers["content-security-policy"]
    [directive] = [d.strip() for d in policy.split(";") if "frame-ancestors" in d]
    return directive


# --- the page ------------------------------------------------------------------------


def test_the_root_is_the_embedded_page_only_when_shopify_opens_it(
    http: httpx.Client, shopify: ShopifySimulator
) -> None:
    signed_out = http.get("/", headers={"accept": "text/html"})
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/login")
    assert frame_ancestors(signed_out) == "frame-ancestors 'none'"
    # A shop without embedded=1 is not Shopify's admin either.
    assert http.get("/", params={"shop": SHOP}).status_code == 303

    page = launch(http)
    assert page.status_code == 200
    head = page.text.split("<head>", 1)[1]
    # Shopify's rule: the API key meta tag, then App Bridge's script, before anything.
    first, second = re.findall(r"<(?:meta|script|link|title)\b[^>]*>", head)[:2]
    assert first == f'<meta name="shopify-api-key" content="{CLIENT_ID}">'
    assert second == f'<script src="{shopify.app_bridge_url}">'
    assert "x-frame-options" not in page.headers
    assert page.headers["cache-control"] == "no-store"
    assert "set-cookie" not in page.headers


def test_only_the_shops_own_admin_and_shopifys_may_frame_it(
    http: httpx.Client, shopify: ShopifySimulator
) -> None:
    admin_origin = shopify.base_url
    own = frame_ancestors(launch(http, SHOP))
    assert own == f"frame-ancestors {admin_origin} https://admin.shopify.com"
    policy = launch(http, SHOP).headers["content-security-policy"]
    assert f"script-src 'self' {admin_origin}" in policy  # App Bridge's origin, no more
    # Every other page of the dashboard stays unframeable.
    login = http.get("/login")
    assert frame_ancestors(login) == "frame-ancestors 'none'"
    assert login.headers["x-frame-options"] == "DENY"


def test_production_framing_names_the_shop_itself(settings: Settings) -> None:
    from cybergine.shopify import embedded

    real = settings.model_copy(update={"shopify_admin_url": "https://{shop}"})
    assert embedded.frame_ancestors(real, "Trail-Gear.myshopify.com") == (
        "frame-ancestors https://trail-gear.myshopify.com https://admin.shopify.com"
    )


@pytest.mark.parametrize(
    "hostile",
    [
        "evil.example",
        "trail-gear.myshopify.com.evil.example",
        "evil.example/x.myshopify.com",
        "trail-gear.myshopify.com https://evil.example",
        "trail-gear.myshopify.com;script-src *",
        "*.myshopify.com",
    ],
)
def test_a_hostile_shop_parameter_is_refused_and_frames_nothing(
    http: httpx.Client, hostile: str
) -> None:
    page = launch(http, hostile)
    assert page.status_code in (400, 422)
    assert "myshopify.com domain" in page.text
    assert frame_ancestors(page) == "frame-ancestors 'none'"
    assert "evil" not in page.headers["content-security-policy"]


# --- session tokens --------------------------------------------------------------------


def forged(shop: str = SHOP, **changes: object) -> str:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, object] = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": CLIENT_ID,
        "sub": "42",
        "exp": now + 60,
        "nbf": now,
        "iat": now,
        "jti": "j",
        "sid": "s",
    }
    secret = str(changes.pop("secret", CLIENT_SECRET))
    claims.update(changes)
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic abc"},
        bearer("not-a-jwt"),
        bearer(forged(secret="shpss_someone-elses-secret-000000")),
        bearer(forged(aud="another-app")),
        bearer(forged(exp=int((datetime.now(UTC) - timedelta(minutes=5)).timestamp()))),
        bearer(forged(dest="https://evil.example")),
    ],
    ids=["none", "basic", "garbage", "forged", "other-app", "expired", "hostile-dest"],
)
def test_a_bad_session_token_is_401_asking_for_a_fresh_one(
    http: httpx.Client, headers: dict[str, str], shopify: ShopifySimulator
) -> None:
    response = http.get(STATUS, headers={"Accept": "application/json", **headers})
    assert response.status_code == 401
    assert response.headers[RETRY_INVALID_SESSION_HEADER] == "1"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert shopify.tokens.issued(SHOP) == []  # nothing was exchanged


# --- install -------------------------------------------------------------------------


async def organisation_of(database: Database, domain: str) -> tuple[ShopifyShop, Organisation]:
    async with database.transaction() as session:
        shop = await session.scalar(select(ShopifyShop).where(ShopifyShop.shop_domain == domain))
        assert shop is not None
        organisation = await session.get(Organisation, shop.organisation_id)
        assert organisation is not None
        return shop, organisation


async def test_the_first_request_of_a_new_shop_installs_it_with_its_owner(
    http: httpx.Client, database: Database, settings: Settings, shopify: ShopifySimulator
) -> None:
    response = http.get(STATUS, headers=bearer(shopify.session_token(SHOP)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["shop"] == SHOP
    assert body["connection"]["status"] == "installed"
    assert body["connection"]["scopes"] == ["read_products", "read_content", "read_legal_policies"]
    # The first full sync is asked for with the install.
    assert body["sync"]["state"] == "running"
    assert body["sync"]["detail"]["latest"]["kind"] == "full"
    assert body["embed"]["state"] == "unknown"
    assert body["embed"]["editor_url"] == (
        f"https://{SHOP}/admin/themes/current/editor?context=apps"
        f"&activateAppId={CLIENT_ID}/chat-embed"
    )
    assert body["billing"]["plan"] == "Free"

    shop, organisation = await organisation_of(database, SHOP)
    assert organisation.name == "Trail Gear"
    assert shop.access_token in shopify.tokens.issued(SHOP)
    async with database.transaction() as session:
        owner = await session.scalar(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.organisation_id == organisation.id, Membership.role == Role.OWNER)
        )
        assert owner is not None
        assert owner.email == "owner@trail-gear.example"
        [event] = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "shopify.shop.installed")
            )
        ).all()
        assert event.organisation_id == organisation.id
        assert event.target_id == str(shop.id)
        welcome = await session.scalar(
            select(OutboundEmail).where(OutboundEmail.to_address == owner.email)
        )
        assert welcome is not None
        assert "/password/forgot" in welcome.body_text

    # The sync runs as jobs; the page then says what the catalogue holds.
    await run_jobs(database, settings)
    synced = http.get(STATUS, headers=bearer(shopify.session_token(SHOP))).json()["sync"]
    assert synced["state"] == "synced", synced
    assert synced["label"].startswith(f"{synced['products']} products in the catalogue.")

    # Later requests use the stored token: no second exchange, no second organisation.
    again = http.get(STATUS, headers=bearer(shopify.session_token(SHOP)))
    assert again.status_code == 200
    assert len(shopify.tokens.issued(SHOP)) == 1
    async with database.transaction() as session:
        count = await session.scalar(select(func.count()).select_from(ShopifyShop))
        assert count == 1


async def test_a_reinstall_restores_the_same_organisation(
    http: httpx.Client, database: Database, shopify: ShopifySimulator
) -> None:
    assert http.get(STATUS, headers=bearer(shopify.session_token(SHOP))).status_code == 200
    shop, organisation = await organisation_of(database, SHOP)
    # What app/uninstalled leaves behind: the shop and organisation hidden, tokens gone.
    async with database.transaction() as session:
        row = await session.get(ShopifyShop, shop.id)
        assert row is not None
        row.status = ShopStatus.UNINSTALLED
        row.uninstalled_at = datetime.now(UTC)
        row.access_token = row.refresh_token = None
        row.plan_name, row.subscription_status = "Growth", "ACTIVE"
        org = await session.get(Organisation, organisation.id)
        assert org is not None
        org.status = OrganisationStatus.SHOP_UNINSTALLED

    response = http.get(STATUS, headers=bearer(shopify.session_token(SHOP)))
    assert response.status_code == 200, response.text
    restored, same = await organisation_of(database, SHOP)
    assert restored.id == shop.id
    assert same.id == organisation.id
    assert same.status == OrganisationStatus.ACTIVE
    assert restored.status == ShopStatus.INSTALLED
    assert restored.uninstalled_at is None
    assert restored.access_token in shopify.tokens.issued(SHOP)
    # Shopify cancelled the subscription with the uninstall: the shop starts on Free.
    assert restored.subscription_status == "CANCELLED"
    assert response.json()["billing"]["plan"] == "Free"
    async with database.transaction() as session:
        actions = (
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.organisation_id == organisation.id)
            )
        ).all()
        assert "shopify.shop.reinstalled" in actions
        organisations = await session.scalar(select(func.count()).select_from(Organisation))
        assert organisations == 1


async def test_one_shops_token_never_sees_another_shop(
    http: httpx.Client, database: Database, shopify: ShopifySimulator
) -> None:
    mine = http.get(STATUS, headers=bearer(shopify.session_token(SHOP))).json()
    theirs = http.get(STATUS, headers=bearer(shopify.session_token(OTHER_SHOP))).json()
    assert mine["shop"] == SHOP
    assert theirs["shop"] == OTHER_SHOP
    _, first_org = await organisation_of(database, SHOP)
    _, second_org = await organisation_of(database, OTHER_SHOP)
    assert first_org.id != second_org.id
    # A token claiming the other shop in one claim only is refused outright.
    mixed = forged(SHOP, dest=f"https://{OTHER_SHOP}")
    assert http.get(STATUS, headers=bearer(mixed)).status_code == 401
    # What one shop reports lands on its own row only.
    reported = http.post(
        "/shopify/api/embed-state",
        headers=bearer(shopify.session_token(OTHER_SHOP)),
        json={"state": "active"},
    )
    assert reported.status_code == 200
    mine_now, _ = await organisation_of(database, SHOP)
    theirs_now, _ = await organisation_of(database, OTHER_SHOP)
    assert mine_now.embed_state is None
    assert theirs_now.embed_state == "active"


def test_an_unknown_embed_state_is_refused(http: httpx.Client, shopify: ShopifySimulator) -> None:
    response = http.post(
        "/shopify/api/embed-state",
        headers=bearer(shopify.session_token(SHOP)),
        json={"state": "<script>"},
    )
    assert response.status_code == 422
    assert "state is one of" in response.json()["detail"]


# --- into the full dashboard -------------------------------------------------------------


async def test_open_full_dashboard_signs_the_owner_in_once(
    http: httpx.Client, live_server: LiveServer, database: Database, shopify: ShopifySimulator
) -> None:
    link = http.post("/shopify/api/dashboard-link", headers=bearer(shopify.session_token(SHOP)))
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    path = url.split("://", 1)[1].split("/", 1)[1]
    with httpx.Client(base_url=live_server.url, verify=TLS, follow_redirects=False) as browser:
        signed_in = browser.get(f"/{path}", headers={"accept": "text/html"})
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/"
        assert signed_in.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=")
        overview = browser.get("/", headers={"accept": "text/html"})
        assert overview.status_code == 200
        assert "Trail Gear" in overview.text
        # The panel of an organisation with a shop: embed state and the editor link.
        assert "Shopify: trail-gear.myshopify.com" in overview.text
        assert f"activateAppId={CLIENT_ID}/chat-embed" in overview.text.replace("&amp;", "&")
    with httpx.Client(base_url=live_server.url, verify=TLS, follow_redirects=False) as other:
        reused = other.get(f"/{path}", headers={"accept": "text/html"})
        assert reused.status_code == 410
        assert "no longer valid" in reused.text


def test_a_tampered_sign_in_link_is_refused(http: httpx.Client, shopify: ShopifySimulator) -> None:
    url = http.post(
        "/shopify/api/dashboard-link", headers=bearer(shopify.session_token(SHOP))
    ).json()["url"]
    token = url.rsplit("/", 1)[1]
    body, seal = token.split(".")
    tampered = http.get(f"/shopify/sign-in/{body}x.{seal}", headers={"accept": "text/html"})
    assert tampered.status_code == 410
    assert SESSION_COOKIE not in tampered.headers.get("set-cookie", "")


async def test_two_first_requests_at_once_install_one_organisation(
    live_server: LiveServer, database: Database, shopify: ShopifySimulator
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=20, verify=TLS) as client:
        answers = await asyncio.gather(
            *(client.get(STATUS, headers=bearer(shopify.session_token(SHOP))) for _ in range(3))
        )
    assert [a.status_code for a in answers] == [200, 200, 200]
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Organisation)) == 1
        assert await session.scalar(select(func.count()).select_from(ShopifyShop)) == 1
        installs = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "shopify.shop.installed")
        )
        assert installs == 1


async def test_an_owner_account_with_other_organisations_is_not_signed_in_from_shopify(
    http: httpx.Client, database: Database, shopify: ShopifySimulator
) -> None:
    """The shop's e-mail already had an account, owner of another organisation: it becomes
    the shop's owner too, but whoever opens the app in the shop's admin must not get it."""
    elsewhere, existing = await make_organisation(
        database, name="Earlier business", owner_email="owner@trail-gear.example"
    )
    assert http.get(STATUS, headers=bearer(shopify.session_token(SHOP))).status_code == 200
    _, organisation = await organisation_of(database, SHOP)
    assert organisation.id != elsewhere.id
    async with database.transaction() as session:
        owners = (
            await session.scalars(
                select(Membership.user_id).where(
                    Membership.organisation_id == organisation.id, Membership.role == Role.OWNER
                )
            )
        ).all()
        assert owners == [existing.id]
    refused = http.post("/shopify/api/dashboard-link", headers=bearer(shopify.session_token(SHOP)))
    assert refused.status_code == 409
    assert "sign in with its e-mail address and password" in refused.json()["detail"]
