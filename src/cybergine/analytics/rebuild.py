"""Recomputing the aggregates from the raw rows (``cybergine analytics rebuild``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text

from cybergine.accounts.models import Organisation
from cybergine.analytics import days, rollups
from cybergine.db.engine import Database
from cybergine.errors import NotFound
from cybergine.privacy.retention import MAXIMUM_AGE, Retention


class UnknownOrganisation(NotFound):
    pass


@dataclass(frozen=True)
class Report:
    organisations: int
    since: datetime


async def rebuild(
    database: Database,
    *,
    idle_hours: float,
    organisation_id: uuid.UUID | None = None,
    since: datetime | None = None,
) -> Report:
    """The aggregates of every hour from ``since`` (default: as far back as aggregates
    are kept) to now, for one organisation or all, a ``REBUILD_STEP`` per transaction;
    and the knowledge gaps' daily counts, all of an organisation's in one transaction
    (they hold its last 12 months, the questions' own age, whatever ``since`` says)."""
    measure = rollups.measure_now(idle_hours)
    start = max(since, measure.now - MAXIMUM_AGE[Retention.ANALYTICS]) if since else None
    start = start or measure.now - MAXIMUM_AGE[Retention.ANALYTICS]
    async with database.transaction() as session:
        query = select(Organisation.id).order_by(Organisation.id)
        if organisation_id is not None:
            query = query.where(Organisation.id == organisation_id)
        organisations = list(await session.scalars(query))
    if organisation_id is not None and not organisations:
        raise UnknownOrganisation(f"No organisation {organisation_id}.")
    for organisation in organisations:
        for step_start, step_end in rollups.rebuild_steps(start, measure.now):
            async with database.transaction() as session:
                await rollups.rebuild_step(session, organisation, step_start, step_end, measure)
        async with database.transaction() as session:
            await session.execute(
                text("SELECT cybergine_knowledge_gap_days_rebuild(:organisation_id)"),
                {"organisation_id": organisation},
            )
    return Report(len(organisations), days.day_of(start))
