"""Every route declares how it is protected, and the permission matrix is what we say."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from cybergine.accounts.models import Role
from cybergine.accounts.permissions import ROLE_PERMISSIONS, Permission
from cybergine.app import create_app
from cybergine.settings import Settings
from cybergine.web.access import is_public, marks
from cybergine.web.routing import api_routes, iter_routes

# Framework routes that are not ours to protect: the OpenAPI document and static files.
FRAMEWORK_PATHS = {"/api/v1/openapi.json", "/static"}


def unprotected_routes(app: FastAPI) -> list[str]:
    problems = []
    for route in iter_routes(app.routes):
        if isinstance(route, APIRoute):
            markers = marks(route.dependant)
            if len(markers) != 1:
                problems.append(f"{sorted(route.methods)} {route.path}: {len(markers)} markers")
        elif isinstance(route, Mount | Route) and route.path not in FRAMEWORK_PATHS:
            problems.append(f"{route.path}: not an APIRoute, so its protection cannot be checked")
    return problems


def test_every_route_declares_its_protection(settings: Settings) -> None:
    app = create_app(settings, run_worker=False)
    assert len(api_routes(app.routes)) > 30  # the walk really reaches the included routers
    assert unprotected_routes(app) == []


def test_a_route_without_protection_is_caught(settings: Settings) -> None:
    app = create_app(settings, run_worker=False)

    @app.get("/api/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"oops": "anyone can call this"}

    assert unprotected_routes(app) == ["['GET'] /api/v1/forgotten: 0 markers"]


def test_public_routes_are_the_expected_few(settings: Settings) -> None:
    app = create_app(settings, run_worker=False)
    public = sorted({route.path for route in api_routes(app.routes) if is_public(route.dependant)})
    assert public == sorted(
        {
            "/healthz",
            "/readyz",
            "/metrics",  # loopback clients, or CYBERGINE_METRICS_TOKEN (observability/api.py)
            "/login",
            "/logout",
            "/signup",
            "/signup/confirm/{token}",
            "/password/forgot",
            "/password/reset/{token}",
            "/invitations/{token}",
            "/invitations/{token}/accept",
            "/invitations/{token}/register",
            "/dev/outbox",
            # The WhatsApp sandbox: only with --whatsapp-simulator, embedded, this machine.
            "/dev/whatsapp",
            "/dev/whatsapp/thread",
            "/dev/whatsapp/messages",
            "/dev/whatsapp/taps",
            # Meta's callbacks: authenticated by their signature, not by a credential.
            "/webhooks/whatsapp",
            # Shopify's webhooks: authenticated by their HMAC, not by a credential.
            "/webhooks/shopify",
            # The Shopify admin's embedded app: the page at the root (only with embedded=1
            # and a shop), its API authenticated by App Bridge session tokens, and the
            # sealed one-time link from it into the dashboard.
            "/",
            "/shopify/api/status",
            "/shopify/api/embed-state",
            "/shopify/api/subscribe",
            "/shopify/api/dashboard-link",
            "/shopify/sign-in/{token}",
            # The key that checks an export bundle's signature: public by its nature.
            "/.well-known/cybergine-signing-key",
            # The web chat widget: a public key, then a signed visitor token.
            "/widget.js",
            "/widget/v1/session",
            "/widget/v1/messages",
            "/widget/v1/handoff",
            "/widget/v1/rating",
            "/widget/v1/events",
            "/widget/v1/{path:path}",
            "/widget/v1/openapi.json",
            # The demo storefront: a shop page anyone may visit.
            "/demo/store",
            # The browser tab's icon, a static file browsers fetch before signing in.
            "/favicon.ico",
            # The API reference: the public OpenAPI document, rendered.
            "/api/docs",
        }
    )


EXPECTED_MATRIX = {
    Role.OWNER: set(Permission),
    Role.ADMIN: set(Permission)
    - {Permission.ORGANISATION_DELETE, Permission.ORGANISATION_EXPORT, Permission.BILLING_MANAGE},
    Role.AGENT: {
        Permission.ORGANISATION_READ,
        Permission.TEAM_READ,
        Permission.CONFIGURATION_READ,
        Permission.CONVERSATIONS_READ,
        Permission.CONVERSATIONS_REPLY,
    },
    Role.VIEWER: {
        Permission.ORGANISATION_READ,
        Permission.TEAM_READ,
        Permission.CONFIGURATION_READ,
        Permission.CONVERSATIONS_READ,
    },
}


@pytest.mark.parametrize("role", list(Role))
def test_permission_matrix(role: Role) -> None:
    assert set(ROLE_PERMISSIONS[role]) == EXPECTED_MATRIX[role]


def test_only_viewers_are_read_only() -> None:
    writes = {p for p in Permission if not p.value.endswith(":read")}
    assert not (ROLE_PERMISSIONS[Role.VIEWER] & writes)
