"""Counting a security signal that no audit entry records, one row per organisation,
kind, subject and minute: a burst adds to one row rather than writing thousands."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.security.models import AlertKind, SecuritySignal

# Longer than any window the monitor counts in (``security_alert_window_minutes``).
SIGNALS_KEPT = timedelta(days=1)


async def add(
    session: AsyncSession, kind: AlertKind, counts: Iterable[tuple[uuid.UUID, uuid.UUID, int]]
) -> None:
    """Add ``(organisation_id, subject_id, count)`` to this minute's rows of ``kind``, in
    the caller's transaction."""
    rows = [
        {"organisation_id": org, "kind": kind.value, "subject_id": subject, "count": count}
        for org, subject, count in counts
        if count > 0
    ]
    if not rows:
        return
    statement = insert(SecuritySignal).values(
        [{**row, "minute": func.date_trunc("minute", func.now())} for row in rows]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["organisation_id", "kind", "subject_id", "minute"],
            set_={"count": SecuritySignal.count + statement.excluded.count},
        )
    )


async def prune(session: AsyncSession, now: datetime) -> None:
    await session.execute(delete(SecuritySignal).where(SecuritySignal.minute < now - SIGNALS_KEPT))
