"""What a number's page says of its health: when its last webhook arrived, and the last
thing that went wrong (a send Meta refused, a webhook whose signature did not match).

Webhooks are the hot path (a busy number gets hundreds a second), so a process stamps a
number at most once a minute (``STAMP_EVERY_SECONDS``), in one statement of its own after
the delivery is verified: the page shows the time to the minute, and a busy number's row
is written once a minute per process rather than on every delivery. A signature mismatch
is throttled the same way, since anyone can send a body naming a known number; the
refusals are counted for the security monitor (``security.signals``) in the same
statement's transaction, then every ``REPORT_REFUSALS_EVERY`` refusals in between.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.bounded_cache import BoundedCache
from cybergine.channels.whatsapp.models import LAST_ERROR_LENGTH, WhatsAppNumber
from cybergine.db.engine import Database
from cybergine.security import signals
from cybergine.security.models import AlertKind

STAMP_EVERY_SECONDS = 60.0
CAPACITY = 4096  # numbers remembered per process; a forgotten one is only stamped again
# Refusals of one number counted in memory before they are written, between stamps: a
# burst costs a write per this many, and at most this many are never written.
REPORT_REFUSALS_EVERY = 5

SIGNATURE_MISMATCH = (
    "A webhook arrived for this number with a signature that does not match its app "
    "secret, so it was refused. Check the app secret (Meta app, App settings, Basic)."
)


class HealthStamps:
    """One per process (``app.state``)."""

    def __init__(self, database: Database, *, every_seconds: float = STAMP_EVERY_SECONDS) -> None:
        self._database = database
        self._received: BoundedCache[uuid.UUID, bool] = BoundedCache(
            capacity=CAPACITY, ttl_seconds=every_seconds
        )
        self._refused: BoundedCache[uuid.UUID, bool] = BoundedCache(
            capacity=CAPACITY, ttl_seconds=every_seconds
        )
        # Refusals not yet written, per number (numbers that exist: ``lookup`` found them).
        self._unreported: dict[uuid.UUID, int] = {}

    async def received(self, number_ids: Iterable[uuid.UUID]) -> None:
        """A verified delivery arrived for these numbers."""
        due = _due(self._received, number_ids)
        if due:
            async with self._database.autocommit() as session:
                await session.execute(
                    update(WhatsAppNumber)
                    .where(WhatsAppNumber.id.in_(due))
                    .values(last_webhook_at=func.now(), updated_at=WhatsAppNumber.updated_at)
                    .execution_options(synchronize_session=False)
                )

    async def refused(self, number_ids: Iterable[uuid.UUID]) -> None:
        """A delivery naming these numbers did not verify with their app secret."""
        named = set(number_ids)
        for number_id in named:
            self._unreported[number_id] = self._unreported.get(number_id, 0) + 1
        due = _due(self._refused, named)
        report = {
            number_id: self._unreported.pop(number_id)
            for number_id in sorted(named)
            if number_id in due or self._unreported[number_id] >= REPORT_REFUSALS_EVERY
        }
        if due or report:
            async with self._database.autocommit() as session:
                if due:
                    await record_error(session, due, SIGNATURE_MISMATCH)
                await count_refusals(session, report)


def _due(recent: BoundedCache[uuid.UUID, bool], number_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    due = [number_id for number_id in set(number_ids) if recent.get(number_id) is None]
    for number_id in due:
        recent.put(number_id, True)
    return due


async def count_refusals(session: AsyncSession, counts: dict[uuid.UUID, int]) -> None:
    """Signature failures for the security monitor, per number and its organisation."""
    if not counts:
        return
    owners = await session.execute(
        select(WhatsAppNumber.id, WhatsAppNumber.organisation_id).where(
            WhatsAppNumber.id.in_(list(counts))
        )
    )
    await signals.add(
        session,
        AlertKind.SIGNATURE_FAILURES,
        [(organisation_id, number_id, counts[number_id]) for number_id, organisation_id in owners],
    )


async def record_error(session: AsyncSession, number_ids: Iterable[uuid.UUID], error: str) -> None:
    """Keep ``error`` as the numbers' last error, in the caller's transaction."""
    await session.execute(
        update(WhatsAppNumber)
        .where(WhatsAppNumber.id.in_(list(number_ids)))
        .values(
            last_error=error[:LAST_ERROR_LENGTH],
            last_error_at=func.now(),
            updated_at=WhatsAppNumber.updated_at,
        )
        .execution_options(synchronize_session=False)
    )
