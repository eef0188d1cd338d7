"""Widget visitors: an anonymous id, handed to the browser inside a signed token.

The token binds the visitor to one assistant and to that assistant's current widget key:
it is the only credential of the web chat API, it reaches only its own visitor's
conversation, and rotating the widget key ends every visitor session at once. The
visitor's customer id is derived from the token, so a widget can subscribe to its
conversation before the first message has created any row.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from cybergine.privacy import keys

_VERSION = "v1"
# A fixed namespace: customer ids of visitors are uuid5(namespace, assistant:visitor).
_NAMESPACE = uuid.UUID("6f3c1d3e-52b1-4d0e-9a55-0c4d6a1b7e21")


@dataclass(frozen=True)
class Visitor:
    assistant_id: uuid.UUID
    visitor_id: str  # 32 hex characters

    @property
    def customer_id(self) -> uuid.UUID:
        return uuid.uuid5(_NAMESPACE, f"{self.assistant_id}:{self.visitor_id}")


def _signature(assistant_id: uuid.UUID, visitor_id: str, widget_key: str) -> str:
    key = keys.current().secret_key
    message = f"widget-visitor\x00{assistant_id}\x00{visitor_id}\x00{widget_key}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:40]


def issue(assistant_id: uuid.UUID, widget_key: str) -> tuple[Visitor, str]:
    visitor = Visitor(assistant_id, secrets.token_hex(16))
    return visitor, token_for(visitor, widget_key)


def token_for(visitor: Visitor, widget_key: str) -> str:
    signature = _signature(visitor.assistant_id, visitor.visitor_id, widget_key)
    return f"{_VERSION}.{visitor.assistant_id.hex}.{visitor.visitor_id}.{signature}"


def parse(token: str | None) -> tuple[Visitor, str] | None:
    """The visitor a token claims and its signature, unchecked (see ``verify``)."""
    if not token or len(token) > 200:
        return None
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != _VERSION:
        return None
    try:
        assistant_id = uuid.UUID(hex=parts[1])
    except ValueError:
        return None
    visitor_id = parts[2]
    if len(visitor_id) != 32 or any(c not in "0123456789abcdef" for c in visitor_id):
        return None
    return Visitor(assistant_id, visitor_id), parts[3]


def verify(visitor: Visitor, signature: str, widget_key: str) -> bool:
    expected = _signature(visitor.assistant_id, visitor.visitor_id, widget_key)
    return hmac.compare_digest(expected.encode(), signature.encode())
