"""Meta's webhook signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256>``.

Pure: no settings, no I/O. The HMAC is keyed with the app secret and computed over the
request body exactly as it arrived. Meta serialises non-ASCII characters as ``\\uXXXX``
escapes before signing, so decoding the JSON and encoding it again would produce other
bytes and a signature that never matches: callers must pass the raw body.

Decisions:
- Only the ``sha256=`` prefix is accepted. The legacy ``X-Hub-Signature: sha1=…`` scheme
  is refused, so a downgrade to the weaker hash is impossible.
- Upper-case (or mixed-case) hex digests are accepted. Meta sends lower case, but the
  digest is the same 32 bytes either way, so refusing them would add no security and
  would break proxies that normalise case.
- Surrounding whitespace is ignored (it is not part of an HTTP field value); whitespace
  inside the digest is not.
- An empty app secret verifies nothing: a misconfigured channel must fail closed rather
  than accept bodies signed with a key anyone can guess.
"""

from __future__ import annotations

import hashlib
import hmac
import string

__all__ = ["HEADER", "sign", "verify_signature"]

HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="
_HEX_DIGITS = frozenset(string.hexdigits)
_DIGEST_HEX_LENGTH = hashlib.sha256().digest_size * 2


def _digest(raw_body: bytes, app_secret: str) -> bytes:
    return hmac.new(app_secret.encode("utf-8"), raw_body, hashlib.sha256).digest()


def sign(raw_body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` header value Meta would send for this body."""
    if not app_secret:
        raise ValueError("an app secret is required to sign a webhook body")
    return _PREFIX + _digest(raw_body, app_secret).hex()


def verify_signature(raw_body: bytes, header: str | None, app_secret: str) -> bool:
    """Whether ``header`` is a valid signature of ``raw_body``; never raises."""
    if not app_secret or not isinstance(header, str):
        return False
    value = header.strip()
    if not value.startswith(_PREFIX):
        return False
    hex_digest = value[len(_PREFIX) :]
    # Checked before bytes.fromhex, which would otherwise skip embedded whitespace.
    if len(hex_digest) != _DIGEST_HEX_LENGTH or not _HEX_DIGITS.issuperset(hex_digest):
        return False
    return hmac.compare_digest(bytes.fromhex(hex_digest), _digest(raw_body, app_secret))
