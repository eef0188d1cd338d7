"""What removes the rows of each retention class (policy §11): one purger per class.

``PURGERS`` maps every ``Retention`` to its purger, and every purger says how it removes
the rows of each table of its class (``covers``); ``tests/privacy/test_retention_engine.py``
fails for a class without a purger and for a table its class's purger does not cover, so
a new class or table cannot be added and forgotten.

Purgers work in small batches that make way for the reply path (``privacy.purging``);
conversation history, by far the most rows, has a module of its own
(``privacy.conversation_purge``). Running one twice removes nothing the second time.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, cast, delete, func, null, select

from cybergine.accounts.models import Organisation, OrganisationStatus
from cybergine.accounts.service import organisations
from cybergine.db import partitions
from cybergine.db.base import Base
from cybergine.db.engine import Database
from cybergine.privacy import audit
from cybergine.privacy.conversation_purge import ConversationPurger
from cybergine.privacy.purging import BATCH_SIZE, Pace, Purger, Removal, batch, removals
from cybergine.privacy.retention import MAXIMUM_AGE, Retention
from cybergine.privacy_policy.models import PolicyVersion

__all__ = [
    "BATCH_SIZE",
    "PURGERS",
    "AccountPurger",
    "AgePurger",
    "AuditPurger",
    "ConversationPurger",
    "OperationalPurger",
    "Pace",
    "Purger",
    "Removal",
    "tables_of",
]


def tables_of(retention: Retention) -> list[Table]:
    """The tables whose model declares ``retention``."""
    return [
        mapper.local_table  # type: ignore[misc]
        for mapper in Base.registry.mappers
        if getattr(mapper.class_, "__retention__", None) is retention
    ]


def is_tenant_table(table: Table) -> bool:
    return "organisation_id" in table.c and any(
        foreign.column.table.name == Organisation.__tablename__
        for foreign in table.c.organisation_id.foreign_keys
    )


@dataclass(frozen=True)
class PrunedBy:
    """A periodic job of the App (``namespace:task``) and what it keeps."""

    job: str
    keeps: str


# --- account data, knowledge, catalogue: the life of the account + grace --------------


class AccountPurger(Purger):
    """An organisation deleted by its owner is erased when its grace period ends (30
    days, ``organisation_deletion_grace_days``), and every row it owns goes with it
    (``TenantMixin``'s ``ON DELETE CASCADE``). The deletion defers the erasure job for
    that moment; this purger erases any organisation whose moment has passed, should
    that job have been lost."""

    serves = frozenset({Retention.ACCOUNT, Retention.KNOWLEDGE, Retention.CATALOGUE})

    # Rows of these classes that belong to people rather than organisations, and the
    # periodic job that removes them (a person may also delete their account at once).
    pruned_elsewhere: Mapping[str, PrunedBy] = {
        "users": PrunedBy("accounts:erase_departed_users", "30 days after their last organisation"),
        "audit_actor_labels": PrunedBy(
            "accounts:erase_departed_users", "while the person's account exists"
        ),
    }

    def covers(self, table: Table) -> str | None:
        if table.name == Organisation.__tablename__:
            return "erased when the grace period after their deletion ends"
        if is_tenant_table(table):
            return "with its organisation, when the grace period after its deletion ends"
        pruned = self.pruned_elsewhere.get(table.name)
        return f"kept {pruned.keeps}, by {pruned.job}" if pruned else None

    async def _overdue(self, database: Database, as_of: datetime) -> list[uuid.UUID]:
        async with database.transaction() as session:
            rows = await session.scalars(
                select(Organisation.id)
                .where(
                    Organisation.status == OrganisationStatus.PENDING_DELETION,
                    Organisation.erase_after <= as_of,
                )
                .order_by(Organisation.erase_after)
            )
            return list(rows)

    async def due(self, database: Database, as_of: datetime) -> list[Removal]:
        found: list[Removal] = []
        for organisation_id in await self._overdue(database, as_of):
            found.append(Removal(organisation_id, Retention.ACCOUNT, Organisation.__tablename__, 1))
            async with database.transaction() as session:
                for table in _tenant_tables():
                    rows = await session.scalar(
                        select(func.count()).where(table.c.organisation_id == organisation_id)
                    )
                    if rows:
                        retention = _retention_of(table)
                        found.append(Removal(organisation_id, retention, table.name, rows))
        return found

    async def purge(
        self, database: Database, as_of: datetime, batch_size: int, pace: Pace
    ) -> list[Removal]:
        removed: list[Removal] = []
        # Counted just before: the cascade reports no numbers.
        for removal in await self.due(database, as_of):
            if removal.table != Organisation.__tablename__:
                removed.append(removal)
                continue
            assert removal.organisation_id is not None
            async with database.transaction() as session:
                erased = await organisations.erase_if_due(
                    session, removal.organisation_id, now=as_of
                )
            if erased:
                removed.append(removal)
            else:  # cancelled meanwhile: none of its rows went either
                removed = [r for r in removed if r.organisation_id != removal.organisation_id]
        return removed


def _tenant_tables() -> list[Table]:
    return sorted(
        (table for table in Base.metadata.sorted_tables if is_tenant_table(table)),
        key=lambda table: table.name,
    )


def _retention_of(table: Table) -> Retention:
    for mapper in Base.registry.mappers:
        if mapper.local_table is table:
            retention: Retention = mapper.class_.__retention__
            return retention
    raise LookupError(table.name)


# --- audit trail: 7 years, as a prefix of the hash chain ------------------------------


class AuditPurger(Purger):
    """Audit entries older than 7 years, as a prefix of the chain with a checkpoint, so
    ``cybergine audit verify`` still passes (``privacy.audit.purge_expired``).

    The versions of the platform's privacy policy (§18) are compliance records too: the
    proof of which version was in force when, announced to how many users, to which
    everyone's acknowledgement (``users.policy_acknowledged_at``) refers. A version is
    kept while it is in force, however old, and then for 7 years after a newer one took
    effect."""

    serves = frozenset({Retention.AUDIT})

    def covers(self, table: Table) -> str | None:
        if table.name == audit.AuditEvent.__tablename__:
            return "older than 7 years, as a prefix of the hash chain, with a checkpoint"
        if table.name == PolicyVersion.__tablename__:
            return "while in force, then 7 years after a newer version took effect"
        return None

    @staticmethod
    def _superseded(as_of: datetime) -> Any:
        """Versions a newer one replaced more than 7 years before ``as_of``."""
        version, newer = PolicyVersion.__table__, PolicyVersion.__table__.alias("newer")
        cutoff = (as_of - MAXIMUM_AGE[Retention.AUDIT]).date()
        return (
            select(newer.c.id)
            .where(newer.c.effective_on > version.c.effective_on, newer.c.effective_on <= cutoff)
            .exists()
        )

    async def due(self, database: Database, as_of: datetime) -> list[Removal]:
        # The same prefix as ``audit.purge_expired`` takes: up to the oldest young entry,
        # never the newest.
        cutoff = as_of - MAXIMUM_AGE[Retention.AUDIT]
        events = audit.AuditEvent
        oldest_young = select(func.min(events.seq)).where(events.at >= cutoff).scalar_subquery()
        newest = select(func.max(events.seq)).scalar_subquery()
        async with database.transaction() as session:
            rows = await session.scalar(
                select(func.count()).where(events.seq < func.least(oldest_young, newest))
            )
            versions = await session.scalar(
                select(func.count()).select_from(PolicyVersion).where(self._superseded(as_of))
            )
        return removals(
            None,
            Retention.AUDIT,
            {events.__tablename__: rows or 0, PolicyVersion.__tablename__: versions or 0},
        )

    async def purge(
        self, database: Database, as_of: datetime, batch_size: int, pace: Pace
    ) -> list[Removal]:
        total = 0
        while True:
            started = time.monotonic()
            async with batch(database) as session:
                purged = await audit.purge_expired(session, now=as_of, limit=batch_size)
            total += purged
            if purged < batch_size:
                break
            await pace.rest_after(database, started)
        async with database.transaction() as session:
            # A handful of rows a year: one statement.
            versions = await session.execute(
                delete(PolicyVersion).where(self._superseded(as_of)).returning(PolicyVersion.id)
            )
            removed = len(versions.all())
        return removals(
            None,
            Retention.AUDIT,
            {audit.AuditEvent.__tablename__: total, PolicyVersion.__tablename__: removed},
        )


# --- usage logs, aggregated analytics, billing: a fixed maximum age ---------------------


class AgePurger(Purger):
    """Rows of every table of the class older than the policy's maximum age for it
    (by ``created_at``, which every table has); of a time-partitioned table, the
    partitions wholly older, then the rows (``db.partitions``)."""

    def __init__(
        self, retention: Retention, tables: Callable[[], Iterable[Table]] | None = None
    ) -> None:
        self.serves = frozenset({retention})
        self.retention = retention
        self.maximum_age = MAXIMUM_AGE[retention]
        self._tables = tables or (lambda: tables_of(retention))

    def covers(self, table: Table) -> str | None:
        if table in list(self._tables()):
            return f"older than {self.maximum_age.days} days"
        return None

    async def due(self, database: Database, as_of: datetime) -> list[Removal]:
        found: list[Removal] = []
        async with database.transaction() as session:
            for table in self._tables():
                owner = _owner_column(table)
                rows = await session.execute(
                    select(owner, func.count())
                    .where(table.c.created_at < as_of - self.maximum_age)
                    .group_by(owner)
                )
                found += [Removal(row[0], self.retention, table.name, row[1]) for row in rows]
        return found

    async def purge(
        self, database: Database, as_of: datetime, batch_size: int, pace: Pace
    ) -> list[Removal]:
        removed: Counter[tuple[uuid.UUID | None, str]] = Counter()
        for table in self._tables():
            # A time-partitioned table loses its expired partitions whole; the row
            # deletes below then reach only the partition that straddles the cut.
            partitioning = partitions.PARTITIONED.get(table.name)
            if partitioning is not None:
                cutoff = as_of - self.maximum_age
                for dropped in await partitions.drop_expired(database, partitioning, cutoff):
                    removed.update({(o, table.name): n for o, n in dropped.rows.items()})
            doomed = (
                select(table.c.id)
                .where(table.c.created_at < as_of - self.maximum_age)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            statement = delete(table).where(table.c.id.in_(doomed)).returning(_owner_column(table))
            while True:
                started = time.monotonic()
                async with batch(database) as session:
                    owners: list[uuid.UUID | None] = list(await session.scalars(statement))
                removed.update((owner, table.name) for owner in owners)
                if len(owners) < batch_size:
                    break
                await pace.rest_after(database, started)
        return [
            Removal(owner, self.retention, name, rows) for (owner, name), rows in removed.items()
        ]


def _owner_column(table: Table) -> Any:
    if "organisation_id" in table.c:
        return table.c.organisation_id
    return cast(null(), table.c.id.type).label("organisation_id")


# --- operational rows: pruned by their domain's own periodic job ----------------------


class OperationalPurger(Purger):
    """Operational rows (ids and envelopes, not content) are pruned on short schedules
    by the jobs of the domains that write them; this names them, and a test checks that
    each is a periodic job of the App. The dry run does not count them."""

    serves = frozenset({Retention.OPERATIONAL})

    pruned_by: Mapping[str, PrunedBy] = {
        "user_sessions": PrunedBy("accounts:prune_credentials", "until they expire"),
        "password_reset_tokens": PrunedBy("accounts:prune_credentials", "until used or expired"),
        "login_attempts": PrunedBy("accounts:prune_credentials", "while they count"),
        "rate_counters": PrunedBy("ratelimits:prune_counters", "two hours"),
        "email_changes": PrunedBy("accounts:prune_credentials", "until used or expired"),
        "outbound_emails": PrunedBy("mail:prune_emails", "a record of what was sent"),
        "organisation_exports": PrunedBy(
            "organisation_export:expire",
            "the file until downloaded or 7 days after it is ready; the row 30 days after",
        ),
        "whatsapp_webhook_events": PrunedBy(
            "whatsapp:prune_webhook_events",
            "a week (sooner with a shorter conversation period)",
        ),
        "shopify_webhook_deliveries": PrunedBy(
            "shopify:prune_webhook_deliveries",
            "3 days after processing (a month while waiting), or until the customer's erasure",
        ),
        # The job queue's own table, which no model declares.
        "procrastinate_jobs": PrunedBy(
            "maintenance:prune_finished_jobs", "a week of successes, a month of failures"
        ),
    }

    def covers(self, table: Table) -> str | None:
        pruned = self.pruned_by.get(table.name)
        return f"kept {pruned.keeps}, by {pruned.job}" if pruned else None

    async def due(self, database: Database, as_of: datetime) -> list[Removal]:
        return []

    async def purge(
        self, database: Database, as_of: datetime, batch_size: int, pace: Pace
    ) -> list[Removal]:
        return []


_ACCOUNT = AccountPurger()

PURGERS: Mapping[Retention, Purger] = {
    Retention.ACCOUNT: _ACCOUNT,
    Retention.KNOWLEDGE: _ACCOUNT,
    Retention.CATALOGUE: _ACCOUNT,
    Retention.CONVERSATION: ConversationPurger(),
    Retention.USAGE_LOG: AgePurger(Retention.USAGE_LOG),
    Retention.ANALYTICS: AgePurger(Retention.ANALYTICS),
    Retention.AUDIT: AuditPurger(),
    Retention.BILLING: AgePurger(Retention.BILLING),
    Retention.OPERATIONAL: OperationalPurger(),
}
