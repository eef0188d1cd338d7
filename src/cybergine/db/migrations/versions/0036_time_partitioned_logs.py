"""Time-partitioned storage for the raw WhatsApp webhook events (a partition a day) and
the API usage log (a partition a month), so their retention drops partitions instead of
deleting rows (``db.partitions``). The primary key becomes ``(id, created_at)``.

Both tables are converted in the migration's one transaction: each old table is locked
against writes (reads go on), a partitioned table is made beside it with a default
partition and one per day or month from the oldest row still within the table's
retention to the ones the maintenance job keeps ready, every row is moved in one
statement, the old table is dropped and the new one takes its name, then its keys and
indexes are made. Rows older than the retention land in the default partition, which
the next purge empties. How long it takes and what waits meanwhile: docs/operations.md,
"Partitioned tables".

Revision ID: 0036
Revises: 0035
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from alembic import op
from sqlalchemy import text

from cybergine.db.partitions import PARTITIONED

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


@dataclass(frozen=True)
class _Table:
    name: str
    # Rows older than this need no partition of their own (the table's retention).
    kept: timedelta
    foreign_keys: tuple[tuple[str, str], ...]  # (column, referred table), ON DELETE CASCADE
    indexes: tuple[tuple[str, tuple[str, ...], str], ...]  # (name, columns, method)


_TABLES = (
    _Table(
        "whatsapp_webhook_events",
        timedelta(days=8),
        (("organisation_id", "organisations"), ("whatsapp_number_id", "whatsapp_numbers")),
        (
            ("ix_whatsapp_webhook_events_organisation_id", ("organisation_id",), "btree"),
            ("ix_whatsapp_webhook_events_whatsapp_number_id", ("whatsapp_number_id",), "btree"),
            ("ix_whatsapp_webhook_events_created_at", ("created_at",), "btree"),
        ),
    ),
    _Table(
        "api_usage_log",
        timedelta(days=366),
        (("organisation_id", "organisations"),),
        (
            ("ix_api_usage_log_organisation_id", ("organisation_id",), "btree"),
            (
                "ix_api_usage_log_organisation_id_created_at",
                ("organisation_id", "created_at"),
                "btree",
            ),
            ("ix_api_usage_log_created_at_brin", ("created_at",), "brin"),
        ),
    ),
)


def _keys(table: _Table, primary_key: list[str]) -> None:
    op.create_primary_key(f"pk_{table.name}", table.name, primary_key)
    for column, referred in table.foreign_keys:
        op.create_foreign_key(
            f"fk_{table.name}_{column}_{referred}",
            table.name,
            referred,
            [column],
            ["id"],
            ondelete="CASCADE",
        )
    for name, columns, method in table.indexes:
        op.create_index(name, table.name, list(columns), postgresql_using=method)


def _convert(table: _Table, *, partitioned: bool) -> None:
    old = f"{table.name}_{'unpartitioned' if partitioned else 'partitioned'}"
    op.execute(f'LOCK TABLE "{table.name}" IN EXCLUSIVE MODE')
    op.execute(f'ALTER TABLE "{table.name}" RENAME TO "{old}"')
    partition_by = " PARTITION BY RANGE (created_at)" if partitioned else ""
    op.execute(f'CREATE TABLE "{table.name}" (LIKE "{old}" INCLUDING DEFAULTS){partition_by}')
    if partitioned:
        partitioning = PARTITIONED[table.name]
        now = datetime.now(UTC)
        oldest = op.get_bind().scalar(text(f'SELECT min(created_at) FROM "{old}"'))  # noqa: S608
        first = max(oldest or now, now - table.kept)
        last = partitioning.start_of(now)
        for _ in range(partitioning.ahead):
            last = partitioning.after(last)
        for statement in partitioning.create_statements(first, last):
            op.execute(statement)
    op.execute(f'INSERT INTO "{table.name}" SELECT * FROM "{old}"')  # noqa: S608
    op.execute(f'DROP TABLE "{old}"')
    _keys(table, ["id", "created_at"] if partitioned else ["id"])


def upgrade() -> None:
    for table in _TABLES:
        _convert(table, partitioned=True)


def downgrade() -> None:
    for table in _TABLES:
        _convert(table, partitioned=False)
