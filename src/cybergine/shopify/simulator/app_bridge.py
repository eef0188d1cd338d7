"""The Shopify admin's side of an embedded app: App Bridge session tokens, and a page
that frames the app the way the admin does.

A session token (shopify.dev, "Session tokens"): an HS256 JWT signed with the app's
client secret, valid one minute, whose claims are ``iss`` (the shop's admin,
``https://{shop}/admin``), ``dest`` (the shop, ``https://{shop}``), ``aud`` (the client
id), ``sub`` (the admin user's id), ``exp``, ``nbf``, ``iat``, ``jti`` (unique) and
``sid`` (the admin session).

The admin opens an embedded app in an iframe at its application URL with ``embedded=1``,
``shop``, ``host`` (base64 of the admin's host for the shop), ``id_token``, ``locale``,
``timestamp`` and the query ``hmac``. Inside, App Bridge (a script from Shopify's CDN)
hands the app fresh session tokens. The simulator serves a small stand-in for that script
(``static/app-bridge.js``), because Shopify's CDN cannot be reached from tests or a
demo: the platform is pointed at it in development and tests, never in production.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import time
import uuid
from importlib import resources
from string import Template
from urllib.parse import urlencode

import jwt

from cybergine.shopify.query_hmac import query_hmac
from cybergine.shopify.session_tokens import ALGORITHM

SESSION_TOKEN_SECONDS = 60  # Shopify: a session token is valid for one minute
DEFAULT_USER_ID = "42"
APP_BRIDGE_SCRIPT = "app-bridge.js"


def session_token(
    shop: str,
    *,
    client_id: str,
    client_secret: str,
    user_id: str = DEFAULT_USER_ID,
    session_id: str | None = None,
    lifetime: float = SESSION_TOKEN_SECONDS,
    issued_at: float | None = None,
) -> str:
    """A session token for ``shop``'s admin user, as App Bridge would give the app."""
    at = int(time.time() if issued_at is None else issued_at)
    claims = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": client_id,
        "sub": user_id,
        "exp": at + int(lifetime),
        "nbf": at,
        "iat": at,
        "jti": str(uuid.uuid4()),
        "sid": session_id or secrets.token_hex(32),
    }
    return jwt.encode(claims, client_secret, algorithm=ALGORITHM)


def admin_host(shop: str) -> str:
    """The ``host`` parameter: base64 of the admin's address for the shop."""
    name = shop.removesuffix(".myshopify.com")
    raw = f"admin.shopify.com/store/{name}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def launch_url(
    app_url: str, shop: str, *, client_id: str, client_secret: str, path: str = ""
) -> str:
    """The URL the admin opens the embedded app at (signed, with a fresh session token)."""
    parameters = {
        "embedded": "1",
        "host": admin_host(shop),
        "id_token": session_token(shop, client_id=client_id, client_secret=client_secret),
        "locale": "en",
        "session": secrets.token_hex(32),
        "shop": shop,
        "timestamp": str(int(time.time())),
    }
    parameters["hmac"] = query_hmac(parameters, client_secret)
    return f"{app_url.rstrip('/')}{path or '/'}?{urlencode(parameters)}"


def admin_page(shop: str, frame_url: str, token_url: str) -> str:
    """The admin's frame around the app: answers App Bridge's token requests."""
    template = Template(_read("admin_host.html"))
    return template.substitute(
        shop=html.escape(shop),
        frame_url=html.escape(frame_url, quote=True),
        token_url=json.dumps(token_url),
    )


def app_bridge_script() -> str:
    return _read(APP_BRIDGE_SCRIPT)


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")
