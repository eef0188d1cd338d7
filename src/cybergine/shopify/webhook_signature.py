"""Verifies ``X-Shopify-Hmac-Sha256``: the base64 HMAC-SHA256 of a webhook's raw body.

The body is verified exactly as it arrived: parsing and re-serialising, or dropping a
trailing newline, changes the bytes and the digest with them. A webhook that fails is
answered 401 and nothing of it is stored. Pure: no settings, no database.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from cybergine.shopify.signing import DIGEST_SIZE, InvalidSignature, sign, signed_by_any

WEBHOOK_HMAC_HEADER = "X-Shopify-Hmac-Sha256"
# 32 bytes are 44 base64 characters; anything much longer is not worth decoding.
_MAX_HEADER_LENGTH = 64


def verify_webhook(raw_body: bytes, header_value: str | None, secrets: Sequence[str]) -> None:
    """Raises InvalidSignature unless ``header_value`` is the body's HMAC under one of
    ``secrets`` (current first, then the previous one during a rotation)."""
    digest = _decoded(header_value)
    if digest is None or not signed_by_any(raw_body, digest, secrets):
        raise InvalidSignature(
            f"The {WEBHOOK_HMAC_HEADER} header does not match the body: "
            "the webhook did not come from Shopify."
        )


def webhook_hmac(raw_body: bytes, secret: str) -> str:
    """The header value Shopify would send with ``raw_body``."""
    return base64.b64encode(sign(raw_body, secret)).decode("ascii")


def _decoded(header_value: str | None) -> bytes | None:
    if not header_value or len(header_value) > _MAX_HEADER_LENGTH or not header_value.isascii():
        return None
    try:
        digest = base64.b64decode(header_value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest if len(digest) == DIGEST_SIZE else None
