"""Conversation events, published inside the writer's transaction.

``publish`` issues ``pg_notify``: PostgreSQL delivers it when (and only if) the
transaction commits, to every process listening, so a reply written by a worker reaches a
socket held by any web process, and a rolled-back write announces nothing. The payload
carries ids only (NOTIFY payloads are limited to 8 kB and pass through the server's
memory); listeners read what changed from the database, scoped as usual.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "cybergine_events"

Kind = Literal["message", "state", "typing", "read"]


@dataclass(frozen=True)
class Event:
    organisation_id: uuid.UUID
    conversation_id: uuid.UUID
    kind: Kind
    message_id: uuid.UUID | None = None
    # Set for events a customer's own widget may see (it subscribes by customer).
    customer_id: uuid.UUID | None = None
    # Small facts that need no database read: {"on": true} for typing, {"state": ...}.
    data: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps(
            {
                "o": str(self.organisation_id),
                "c": str(self.conversation_id),
                "k": self.kind,
                "m": str(self.message_id) if self.message_id else None,
                "u": str(self.customer_id) if self.customer_id else None,
                "d": self.data,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, payload: str) -> Event:
        raw = json.loads(payload)
        return cls(
            organisation_id=uuid.UUID(raw["o"]),
            conversation_id=uuid.UUID(raw["c"]),
            kind=raw["k"],
            message_id=uuid.UUID(raw["m"]) if raw.get("m") else None,
            customer_id=uuid.UUID(raw["u"]) if raw.get("u") else None,
            data=raw.get("d") or {},
        )


def notify(event: Event) -> ColumnElement[Any]:
    """The announcement of ``event`` as an SQL expression, to fold into a statement that
    does something else as well (one round trip instead of two)."""
    return func.pg_notify(CHANNEL, event.encode())


async def publish(session: AsyncSession, event: Event) -> None:
    """Announce ``event`` when the session's transaction commits."""
    await session.execute(select(notify(event)))
