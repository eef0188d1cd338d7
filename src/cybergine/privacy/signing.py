"""The server's signature on what it hands out (export bundles, policy §14).

An Ed25519 key derived from the server's secret key (HKDF-SHA256, its own purpose
label), so it needs no key file of its own and survives restarts exactly as long as the
secret does. Anyone can check a signature with the public key, which the server
publishes (``GET /.well-known/cybergine-signing-key``) and puts in every bundle: a
customer, or the organisation they take their data to, can tell that the files are
the ones the platform exported, unchanged.
"""

from __future__ import annotations

import base64

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cybergine.privacy import keys

_PURPOSE = b"cybergine export signing key v1"


def _private_key() -> Ed25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
        keys.current().secret_key
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def sign(data: bytes) -> str:
    """The signature of ``data``, base64."""
    return base64.b64encode(_private_key().sign(data)).decode("ascii")


def public_key_pem() -> str:
    """The key that checks :func:`sign`'s signatures (SubjectPublicKeyInfo, PEM)."""
    return (
        _private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def verify(data: bytes, signature: str, public_key: str) -> bool:
    """Whether ``signature`` (base64) is ``public_key``'s (PEM) on ``data``."""
    try:
        key = serialization.load_pem_public_key(public_key.encode("ascii"))
        if not isinstance(key, Ed25519PublicKey):
            return False
        key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True
