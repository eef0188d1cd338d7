"""Random tokens for links and credentials, and how they are stored.

Tokens carry 256 bits of randomness, so a plain SHA-256 is the right storage hash:
unlike a password there is nothing to brute-force, and lookups stay an index probe.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cybergine.privacy import keys


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC with the server key: for values (an e-mail, an IP address) that must be
    comparable but are too guessable for a plain hash."""
    key = keys.current().secret_key
    return hmac.new(key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
