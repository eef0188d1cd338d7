"""The retention purge (policy §11): every purger of ``privacy.purgers`` in turn, then
one audit entry per organisation saying what went.

The periodic job (``privacy.tasks.purge_expired_data``) and ``cybergine privacy purge``
both run ``run``; ``dry_run`` counts instead of removing. A run is idempotent: what it
removed is gone, and a second run finds nothing and writes no entry.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from sqlalchemy import select

from cybergine.accounts.models import Organisation
from cybergine.db.engine import Database
from cybergine.privacy import audit
from cybergine.privacy.erasure import defer_vacuum
from cybergine.privacy.purgers import BATCH_SIZE, PURGERS, Pace, Purger, Removal
from cybergine.privacy.retention import Retention

log = structlog.get_logger(__name__)

AUDIT_ACTION = "privacy.retention.purged"
AUDIT_ACTOR = audit.Actor.system("retention")

# Counts by retention class, then table.
Counts = dict[str, dict[str, int]]


@dataclass
class Report:
    as_of: datetime
    dry_run: bool
    removals: list[Removal] = field(default_factory=list)
    # Organisation names, for people reading the dry run (an erased one has none).
    names: dict[uuid.UUID, str] = field(default_factory=dict)

    def by_organisation(self) -> dict[uuid.UUID | None, Counts]:
        """Rows per organisation (None: the platform's own rows), class and table."""
        counts: dict[uuid.UUID | None, Counts] = defaultdict(lambda: defaultdict(dict))
        for removal in self.removals:
            tables = counts[removal.organisation_id][removal.retention.value]
            tables[removal.table] = tables.get(removal.table, 0) + removal.rows
        return {
            owner: {c: dict(t) for c, t in classes.items()} for owner, classes in counts.items()
        }

    def lines(self) -> list[str]:
        """The report as the command line prints it: one line per organisation and class."""
        verb = "would remove" if self.dry_run else "removed"
        lines = [f"retention purge as of {self.as_of.isoformat(timespec='seconds')}"]
        ordered = sorted(self.by_organisation().items(), key=lambda item: str(item[0] or ""))
        for owner, classes in ordered:
            who = "platform" if owner is None else f"organisation {owner}"
            if owner is not None and owner in self.names:
                who += f" ({self.names[owner]})"
            for retention, tables in sorted(classes.items()):
                what = ", ".join(f"{rows} {table}" for table, rows in sorted(tables.items()))
                lines.append(f"{who}: {retention}: {verb} {what}")
        if len(lines) == 1:
            lines.append("nothing to purge")
        return lines


def _purgers() -> list[Purger]:
    """Each purger once (one serves several classes), erasures of whole organisations
    first (nothing else need then be purged for them), the audit trail last."""
    unique: list[Purger] = []
    for purger in PURGERS.values():
        if purger not in unique:
            unique.append(purger)
    return sorted(
        unique,
        key=lambda p: (Retention.ACCOUNT not in p.serves, Retention.AUDIT in p.serves),
    )


async def run(
    database: Database,
    *,
    as_of: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    pace: Pace | None = None,
) -> Report:
    """Purge (or, ``dry_run``, count) what is past its time at ``as_of`` (now), in
    batches of ``batch_size`` rows paced by ``pace`` (``privacy.purging.Pace``'s
    defaults)."""
    report = Report(as_of=as_of or datetime.now(UTC), dry_run=dry_run)
    for purger in _purgers():
        if dry_run:
            report.removals += await purger.due(database, report.as_of)
        else:
            report.removals += await purger.purge(
                database, report.as_of, batch_size, pace or Pace()
            )
    await _name_organisations(database, report)
    if not dry_run:
        await _audit(database, report)
        if any(removal.rows for removal in report.removals):
            async with database.transaction() as session:
                await defer_vacuum(session)  # the dead rows leave the disk within minutes
    return report


async def _name_organisations(database: Database, report: Report) -> None:
    ids = {removal.organisation_id for removal in report.removals} - {None}
    if not ids:
        return
    async with database.transaction() as session:
        rows = await session.execute(
            select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids))
        )
        report.names = {row.id: row.name for row in rows}


async def _audit(database: Database, report: Report) -> None:
    """One entry per organisation with what went, each in a short transaction of its own
    (an entry takes the chain's lock)."""
    for owner, counts in report.by_organisation().items():
        async with database.transaction() as session:
            await audit.record(
                session,
                action=AUDIT_ACTION,
                actor=AUDIT_ACTOR,
                organisation_id=owner,
                target_type="organisation" if owner is not None else None,
                target_id=str(owner) if owner is not None else None,
                details={"as_of": report.as_of.isoformat(), "removed": counts},
            )
        log.info("retention purge", organisation_id=str(owner) if owner else None, removed=counts)
