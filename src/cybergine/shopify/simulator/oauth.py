"""Shopify's token endpoint, ``POST https://{shop}/admin/oauth/access_token``: token
exchange of an App Bridge session token for an expiring offline token, and its refresh.

From shopify.dev (token exchange; expiring offline access tokens):
- Token exchange: ``client_id``, ``client_secret``,
  ``grant_type=urn:ietf:params:oauth:grant-type:token-exchange``, ``subject_token`` (the
  session token), ``subject_token_type=urn:ietf:params:oauth:token-type:id_token``,
  ``requested_token_type=urn:shopify:params:oauth:token-type:offline-access-token`` and
  ``expiring=1``. The answer: ``access_token``, ``scope``, ``expires_in`` (3600),
  ``refresh_token``, ``refresh_token_expires_in`` (90 days). Without ``expiring=1`` the
  token does not expire and no refresh token comes with it. An invalid or expired session
  token is a 400.
- Refresh: ``grant_type=refresh_token`` with ``refresh_token``: a new access token and a
  new refresh token. The refresh token just used stays usable until the app first uses
  its replacement (a lost answer can be retried), then it is retired.
- Errors are OAuth's: ``{"error": "invalid_grant", "error_description": ...}``.

The body may be form-encoded or JSON, as Shopify accepts both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cybergine.errors import InvalidInput
from cybergine.shopify.oauth_names import (
    ID_TOKEN_TYPE,
    OFFLINE_TOKEN_TYPE,
    ONLINE_TOKEN_TYPE,
    REFRESH_GRANT,
    TOKEN_EXCHANGE_GRANT,
)
from cybergine.shopify.session_tokens import InvalidSessionToken, verify_session_token

ACCESS_TOKEN_SECONDS = 3600  # Shopify: an expiring offline token lasts one hour
REFRESH_TOKEN_SECONDS = 90 * 24 * 3600  # Shopify: a refresh token lasts 90 days
DEFAULT_SCOPES = "read_products,read_content,read_legal_policies"
_ACCESS_PREFIX = "shpat_"  # Shopify's prefix of offline Admin API tokens
_REFRESH_PREFIX = "shprt_"


class OAuthError(Exception):
    """An OAuth error answer: status and Shopify's body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.body = {"error": error, "error_description": description}


@dataclass
class AccessToken:
    shop: str
    scope: str
    expires_at: float | None  # None: a non-expiring token
    revoked: bool = False

    def valid(self, at: float) -> bool:
        return not self.revoked and (self.expires_at is None or at < self.expires_at)


@dataclass
class RefreshToken:
    shop: str
    scope: str
    expires_at: float
    access_token: str  # the access token issued with it
    previous: str | None = None  # the refresh token it replaced, retired on first use
    retired: bool = False


@dataclass
class TokenSettings:
    """Lifetimes (tests shorten them) and the scopes granted."""

    access_seconds: float = ACCESS_TOKEN_SECONDS
    refresh_seconds: float = REFRESH_TOKEN_SECONDS
    scopes: str = DEFAULT_SCOPES


class TokenAuthority:
    """Issues, refreshes, checks and revokes the tokens of every simulated shop."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.settings = TokenSettings()
        self._lock = threading.Lock()
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._file: Path | None = None

    def keep_in(self, path: Path) -> None:
        """Tokens are kept in ``path`` and read back from it: a development server's
        simulator, restarted, still knows the tokens the platform stored last time."""
        with self._lock:
            self._file = path
            if path.exists():
                saved = json.loads(path.read_text(encoding="utf-8"))
                self._access = {k: AccessToken(**v) for k, v in saved["access"].items()}
                self._refresh = {k: RefreshToken(**v) for k, v in saved["refresh"].items()}

    def _save(self) -> None:
        """Writes the tokens out (under the lock), when they are kept in a file."""
        if self._file is None:
            return
        self._file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._file.with_suffix(".tmp")
        temporary.write_text(
            json.dumps(
                {
                    "access": {k: dataclasses.asdict(v) for k, v in self._access.items()},
                    "refresh": {k: dataclasses.asdict(v) for k, v in self._refresh.items()},
                }
            ),
            encoding="utf-8",
        )
        temporary.chmod(0o600)
        temporary.replace(self._file)

    # -- the endpoint ------------------------------------------------------------------

    def answer(
        self, shop: str, form: Mapping[str, str], *, clock: float | None = None
    ) -> dict[str, object]:
        """The token endpoint's 200 body, or OAuthError with Shopify's status and body."""
        at = time.time() if clock is None else clock
        if form.get("client_id") != self.client_id or not secrets.compare_digest(
            str(form.get("client_secret", "")), self.client_secret
        ):
            raise OAuthError(401, "invalid_client", "Client authentication failed.")
        grant = form.get("grant_type")
        if grant == TOKEN_EXCHANGE_GRANT:
            return self._exchange(shop, form, at)
        if grant == REFRESH_GRANT:
            return self._refreshed(shop, form, at)
        raise OAuthError(
            400, "unsupported_grant_type", f"The grant type {grant!r} is not supported."
        )

    def _exchange(self, shop: str, form: Mapping[str, str], at: float) -> dict[str, object]:
        if form.get("subject_token_type") != ID_TOKEN_TYPE:
            raise OAuthError(400, "invalid_request", "subject_token_type must be an id_token.")
        requested = form.get("requested_token_type")
        if requested not in (OFFLINE_TOKEN_TYPE, ONLINE_TOKEN_TYPE):
            raise OAuthError(400, "invalid_request", "requested_token_type is not supported.")
        try:
            session = verify_session_token(
                str(form.get("subject_token", "")),
                client_id=self.client_id,
                secrets=[self.client_secret],
                now=_moment(at),
            )
        except (InvalidSessionToken, InvalidInput) as error:
            raise OAuthError(400, "invalid_subject_token", str(error.detail)) from error
        if session.shop != shop:
            raise OAuthError(
                400, "invalid_subject_token", "The session token was issued for another shop."
            )
        expiring = str(form.get("expiring", "0")) == "1"
        return self._issue(shop, self.settings.scopes, at, expiring=expiring)

    def _refreshed(self, shop: str, form: Mapping[str, str], at: float) -> dict[str, object]:
        presented = str(form.get("refresh_token", ""))
        with self._lock:
            refresh = self._refresh.get(presented)
            usable = (
                refresh is not None
                and refresh.shop == shop
                and not refresh.retired
                and at < refresh.expires_at
            )
            if not usable or refresh is None:
                raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
            # Using this refresh token proves its predecessor's answer arrived.
            if refresh.previous is not None and refresh.previous in self._refresh:
                self._refresh[refresh.previous].retired = True
                self._save()
            scope = refresh.scope
        return self._issue(shop, scope, at, expiring=True, previous=presented)

    def _issue(
        self, shop: str, scope: str, at: float, *, expiring: bool, previous: str | None = None
    ) -> dict[str, object]:
        access = _ACCESS_PREFIX + secrets.token_hex(16)
        answer: dict[str, object] = {"access_token": access, "scope": scope}
        with self._lock:
            if not expiring:
                self._access[access] = AccessToken(shop, scope, None)
                self._save()
                return answer
            refresh = _REFRESH_PREFIX + secrets.token_hex(16)
            self._access[access] = AccessToken(shop, scope, at + self.settings.access_seconds)
            self._refresh[refresh] = RefreshToken(
                shop, scope, at + self.settings.refresh_seconds, access, previous
            )
            self._save()
        answer.update(
            expires_in=int(self.settings.access_seconds),
            refresh_token=refresh,
            refresh_token_expires_in=int(self.settings.refresh_seconds),
        )
        return answer

    # -- checks and revocation ---------------------------------------------------------

    def shop_of(self, access_token: str | None, *, clock: float | None = None) -> str | None:
        """The shop an access token is valid for now, or None (missing, expired, revoked)."""
        if not access_token:
            return None
        at = time.time() if clock is None else clock
        with self._lock:
            token = self._access.get(access_token)
            return token.shop if token is not None and token.valid(at) else None

    def expire(self, access_token: str) -> None:
        """Ends an access token's life now (tests of a refresh on 401)."""
        with self._lock:
            token = self._access.get(access_token)
            if token is not None:
                token.expires_at = 0.0
                self._save()

    def revoke_shop(self, shop: str) -> None:
        """Every token of a shop stops working (the app was uninstalled)."""
        with self._lock:
            for token in self._access.values():
                if token.shop == shop:
                    token.revoked = True
            for refresh in self._refresh.values():
                if refresh.shop == shop:
                    refresh.retired = True
            self._save()

    def issued(self, shop: str) -> list[str]:
        """The access tokens issued for a shop, oldest first."""
        with self._lock:
            return [token for token, data in self._access.items() if data.shop == shop]


def _moment(at: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(at, dt.UTC)
