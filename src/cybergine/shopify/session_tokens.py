"""Verifies App Bridge session tokens, the proof that a request from our embedded admin
page comes from a signed-in user of one shop's Shopify admin.

A session token is an HS256 JWT signed with the app's client secret and valid for one
minute. Verification is strict: the algorithm is fixed (``none`` and RS256 are refused,
so no key can be confused for another), the signature is checked with the current
secret and, during a rotation, the previous one; ``aud`` is our client id; ``exp`` and
``nbf`` hold within a leeway of at most 10 s; ``dest`` is a valid shop origin and
``iss`` that shop's admin; ``sub`` names the user. Any failure raises InvalidSessionToken,
which answers 401 with ``X-Shopify-Retry-Invalid-Session-Request: 1`` so that App Bridge
fetches a fresh token and retries once. Pure: no settings, no database; the clock is a
parameter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import jwt
from jwt.types import Options

from cybergine.errors import InvalidInput, Unauthorized
from cybergine.shopify.shop_domains import shop_domain_from_origin
from cybergine.shopify.signing import signing_keys

ALGORITHM = "HS256"
MAX_LEEWAY = dt.timedelta(seconds=10)
RETRY_INVALID_SESSION_HEADER = "X-Shopify-Retry-Invalid-Session-Request"
# A session token is a few hundred bytes; a much longer one is not worth parsing.
MAX_TOKEN_LENGTH = 4096
_BEARER = "bearer "
_ADMIN_PATH = "/admin"
# PyJWT checks the signature and the algorithm; the claims are checked below against
# the clock we are given, which PyJWT cannot take.
_SIGNATURE_ONLY: Options = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
}


class InvalidSessionToken(Unauthorized):
    """The request's session token is missing, forged, expired or for someone else."""

    type_slug = "invalid-session-token"
    title = "Invalid session token"
    headers: ClassVar[Mapping[str, str]] = MappingProxyType({RETRY_INVALID_SESSION_HEADER: "1"})


@dataclass(frozen=True)
class SessionToken:
    """What a verified session token says."""

    shop: str  # the shop's myshopify.com domain, from ``dest``
    user_id: str  # ``sub``: the Shopify admin user
    session_id: str | None  # ``sid``
    token_id: str | None  # ``jti``
    expires_at: dt.datetime
    claims: Mapping[str, Any]


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not authorization or authorization[: len(_BEARER)].lower() != _BEARER:
        raise InvalidSessionToken("Send the session token as Authorization: Bearer <token>.")
    return authorization[len(_BEARER) :].strip()


def verify_session_token(
    token: str,
    *,
    client_id: str,
    secrets: Sequence[str],
    now: dt.datetime | None = None,
    leeway: dt.timedelta = MAX_LEEWAY,
) -> SessionToken:
    """The verified token, or InvalidSessionToken saying what was wrong with it."""
    if not dt.timedelta(0) <= leeway <= MAX_LEEWAY:
        raise ValueError(f"the leeway is between 0 and {MAX_LEEWAY.total_seconds():g} s")
    if not client_id:
        raise ValueError("the client id is needed to check a session token's audience")
    at = (now or dt.datetime.now(dt.UTC)).timestamp()
    claims = _signed_claims(token, secrets)
    if claims.get("aud") != client_id:
        raise InvalidSessionToken("The session token was issued for another app.")
    expires, not_before = _time(claims, "exp"), _time(claims, "nbf")
    slack = leeway.total_seconds()
    if at >= expires + slack:
        raise InvalidSessionToken("The session token has expired.")
    if at < not_before - slack:
        raise InvalidSessionToken("The session token is not valid yet.")
    shop = _shop(claims)
    user_id = claims.get("sub")
    if not isinstance(user_id, str) or not user_id:
        raise InvalidSessionToken("The session token names no user (sub).")
    return SessionToken(
        shop=shop,
        user_id=user_id,
        session_id=_optional_text(claims, "sid"),
        token_id=_optional_text(claims, "jti"),
        expires_at=dt.datetime.fromtimestamp(expires, dt.UTC),
        claims=claims,
    )


def _signed_claims(token: str, secrets: Sequence[str]) -> dict[str, Any]:
    keys = signing_keys(secrets)
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidSessionToken("The session token is missing or malformed.")
    for key in keys:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[ALGORITHM], options=_SIGNATURE_ONLY
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as error:
            # Malformed, or signed with another algorithm than HS256 ("none", RS256).
            raise InvalidSessionToken("The session token is malformed.") from error
        return claims
    raise InvalidSessionToken("The session token's signature does not match.")


def _time(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSessionToken(f"The session token has no valid {name}.")
    return float(value)


def _shop(claims: Mapping[str, Any]) -> str:
    """The shop of ``dest``, which ``iss`` (that shop's admin) must agree with."""
    issuer = claims.get("iss")
    if isinstance(issuer, str) and issuer.endswith(_ADMIN_PATH):
        issuer = issuer[: -len(_ADMIN_PATH)]
    try:
        shop = shop_domain_from_origin(claims.get("dest"), field="dest")
        issuing_shop = shop_domain_from_origin(issuer, field="iss")
    except InvalidInput as error:
        raise InvalidSessionToken(f"The session token's {error.detail}") from error
    if issuing_shop != shop:
        raise InvalidSessionToken("The session token's iss and dest name different shops.")
    return shop


def _optional_text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None
