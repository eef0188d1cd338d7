"""Each partition of messages indexes its organisation's rows by its unique index of
(organisation_id, external_id), now whole instead of partial, and the table's index of
organisation_id alone goes.

With both, a lookup of a delivery or a status by organisation and external id could be
planned through the index of organisation_id alone while a partition had no statistics
yet (a new database, a new year): a read of every message of the organisation for each
lookup, kept for as long as the connection kept the plan (``bench/whatsapp.py``:
PostgreSQL's CPU per delivery grew with the messages stored). The unique index holds
the same rows unique as before (NULLs are distinct), and serves the organisation's
reads as the index it replaces did. ``cybergine_whatsapp_ingest`` matches a status by
its external id, then by the callback id, each through one index.

Each partition's index is built again while writes to messages wait; how long that takes
and what waits: docs/operations.md, "Migrating an existing installation (migration 0046)".

Revision ID: 0046
Revises: 0045
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

from cybergine.db.migrate import execute_script
from cybergine.db.partitions import PARTITION_NAMES

revision: str = "0046"
down_revision: str | None = "0045"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

# What db.partitions made each partition's index of external ids at each end.
_WHOLE = "(organisation_id, external_id)"
_PARTIAL = "(organisation_id, external_id) WHERE external_id IS NOT NULL"


def _remake_external_id_indexes(definition: str) -> None:
    """Each partition's index of external ids made anew: built beside the old one while
    writes wait (reads go on), then swapped for it in a moment, since dropping an index
    keeps every read of its partition out until the commit."""
    op.execute('LOCK TABLE "messages" IN SHARE MODE')
    partitions = op.get_bind().scalars(PARTITION_NAMES, {"table": "messages"}).all()
    for name in partitions:
        op.execute(f'CREATE UNIQUE INDEX "{name}_external_id_new" ON "{name}" {definition}')
    for name in partitions:
        op.execute(f'DROP INDEX "{name}_external_id"')
        op.execute(f'ALTER INDEX "{name}_external_id_new" RENAME TO "{name}_external_id"')


def upgrade() -> None:
    _remake_external_id_indexes(_WHOLE)
    op.drop_index("ix_messages_organisation_id", table_name="messages")
    for script in ("record_inbound_0046.sql", "whatsapp_ingest_0046.sql"):
        execute_script((SQL_DIR / script).read_text())


def downgrade() -> None:
    op.create_index("ix_messages_organisation_id", "messages", ["organisation_id"])
    _remake_external_id_indexes(_PARTIAL)
    for script in ("record_inbound_0045.sql", "whatsapp_ingest_0045.sql"):
        execute_script((SQL_DIR / script).read_text())
