"""Messages partitioned by the year of their UUIDv7 id (``db.partitions``), so the purge of
conversation history drops a year whose messages have all expired instead of deleting
its rows; ``cybergine_record_inbound`` asks for an external id across the partitions
before it inserts (``db/sql/record_inbound_0045.sql``), and it and
``cybergine_whatsapp_ingest`` plan their statements once per connection.

The primary key stays ``(id)``, since it holds the partition key, and so do the foreign
keys that refer to messages. The two unique keys without ``id`` (a delivery's external
id, the message a reply answers) become unique indexes of each partition.

In the migration's one transaction: the foreign keys that refer to messages are
dropped, the table is locked against writes (reads go on), a partitioned table is made
beside it with a default partition and one per year from its oldest message's to the
ones the maintenance job keeps ready, every row is copied in one statement, the old
table is dropped and the new one takes its name, then its keys and indexes are made and
the foreign keys made again (each checks its rows). How long it takes and what waits
meanwhile: docs/operations.md, "Partitioned tables".

Revision ID: 0045
Revises: 0044
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import op
from sqlalchemy import text

from cybergine.db.ids import uuid7_time_ms
from cybergine.db.migrate import execute_script
from cybergine.db.partitions import PARTITIONED

revision: str = "0045"
down_revision: str | None = "0044"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

# (table, column, ON DELETE) of every foreign key to messages(id), its own included.
_REFERENCES = (
    ("messages", "reply_to_id", "SET NULL"),
    ("message_attachments", "message_id", "CASCADE"),
    ("csat_surveys", "message_id", "SET NULL"),
    ("knowledge_gap_questions", "message_id", "CASCADE"),
)
_FOREIGN_KEYS = (
    ("organisation_id", "organisations", "CASCADE"),
    ("conversation_id", "conversations", "CASCADE"),
    ("author_user_id", "users", "SET NULL"),
)
_INDEXES = (
    ("ix_messages_organisation_id", ("organisation_id",)),
    ("ix_messages_conversation_id_created_at", ("conversation_id", "created_at")),
    ("ix_messages_conversation_id_id", ("conversation_id", "id")),
)
# Ids of a time no message can have (a clock far off) get no partition of their own:
# the default partition holds them.
_OLDEST = datetime(2020, 1, 1, tzinfo=UTC)


def _reference_name(table: str, column: str) -> str:
    return f"fk_{table}_{column}_messages"


def _drop_references() -> None:
    for table, column, _ in _REFERENCES:
        op.drop_constraint(_reference_name(table, column), table, type_="foreignkey")


def _make_keys() -> None:
    op.create_primary_key("pk_messages", "messages", ["id"])
    for column, referred, ondelete in _FOREIGN_KEYS:
        op.create_foreign_key(
            f"fk_messages_{column}_{referred}",
            "messages",
            referred,
            [column],
            ["id"],
            ondelete=ondelete,
        )
    for name, columns in _INDEXES:
        op.create_index(name, "messages", list(columns))
    for table, column, ondelete in _REFERENCES:
        op.create_foreign_key(
            _reference_name(table, column), table, "messages", [column], ["id"], ondelete=ondelete
        )


def _copy_into_new(partition_by: str, old: str) -> None:
    op.execute('LOCK TABLE "messages" IN EXCLUSIVE MODE')
    op.execute(f'ALTER TABLE "messages" RENAME TO "{old}"')
    op.execute(f'CREATE TABLE "messages" (LIKE "{old}" INCLUDING DEFAULTS){partition_by}')


def upgrade() -> None:
    _drop_references()
    old = "messages_unpartitioned"
    _copy_into_new(" PARTITION BY RANGE (id)", old)
    partitioning = PARTITIONED["messages"]
    now = datetime.now(UTC)
    oldest_id = op.get_bind().scalar(
        text(f'SELECT id FROM "{old}" ORDER BY id LIMIT 1')  # noqa: S608
    )
    oldest = now
    if oldest_id is not None:
        made = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=uuid7_time_ms(oldest_id))
        oldest = min(max(made, _OLDEST), now)
    last = partitioning.start_of(now)
    for _ in range(partitioning.ahead):
        last = partitioning.after(last)
    for statement in partitioning.create_statements(oldest, last):
        op.execute(statement)
    op.execute(f'INSERT INTO "messages" SELECT * FROM "{old}"')  # noqa: S608
    op.execute(f'DROP TABLE "{old}"')
    _make_keys()
    for script in ("record_inbound_0045.sql", "whatsapp_ingest_0045.sql"):
        execute_script((SQL_DIR / script).read_text())


def downgrade() -> None:
    _drop_references()
    old = "messages_partitioned"
    _copy_into_new("", old)
    op.execute(f'INSERT INTO "messages" SELECT * FROM "{old}"')  # noqa: S608
    op.execute(f'DROP TABLE "{old}"')
    _make_keys()
    op.create_unique_constraint("uq_messages_reply_to_id", "messages", ["reply_to_id"])
    op.create_index(
        "uq_messages_external_id",
        "messages",
        ["organisation_id", "external_id"],
        unique=True,
        postgresql_where=text("external_id IS NOT NULL"),
    )
    for script in ("record_inbound_0040.sql", "whatsapp_ingest_0027.sql"):
        execute_script((SQL_DIR / script).read_text())
