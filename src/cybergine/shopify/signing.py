"""HMAC-SHA256 with the app's client secrets, the one primitive under every signature
Shopify sends (webhooks, OAuth and admin query strings, app proxy requests).

A secret rotation has two live secrets: Shopify signs with the new one as soon as it is
made current, while deliveries already queued still carry the old one's signature. So a
signature is accepted if any configured secret (current first, then the previous one)
made it. Pure: no settings, no database.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from cybergine.errors import Unauthorized

DIGEST_SIZE = hashlib.sha256().digest_size


class InvalidSignature(Unauthorized):
    """A request claimed to come from Shopify and its signature says otherwise."""

    type_slug = "invalid-signature"
    title = "Invalid signature"


def signing_keys(secrets: Sequence[str]) -> tuple[bytes, ...]:
    """The secrets as HMAC keys. A bare string is refused (it would be read as one
    secret per character), and so is an empty secret, which anyone could sign with."""
    if isinstance(secrets, str | bytes):
        raise TypeError("secrets is a sequence of secrets, current first")
    keys = tuple(secret.encode() for secret in secrets)
    if not keys or not all(keys):
        raise ValueError("at least one client secret is needed, and none may be empty")
    return keys


def signed_by_any(message: bytes, digest: bytes, secrets: Sequence[str]) -> bool:
    """Whether ``digest`` is the HMAC-SHA256 of ``message`` under one of ``secrets``.
    Every secret is tried and compared in constant time, so the answer's timing tells
    neither how much of the digest matched nor which secret did."""
    matched = False
    for key in signing_keys(secrets):
        expected = hmac.new(key, message, hashlib.sha256).digest()
        matched |= hmac.compare_digest(expected, digest)
    return matched


def sign(message: bytes, secret: str) -> bytes:
    """The HMAC-SHA256 of ``message`` under ``secret``: what Shopify sends, for the
    simulator and the tests that stand in for it."""
    return hmac.new(signing_keys([secret])[0], message, hashlib.sha256).digest()
