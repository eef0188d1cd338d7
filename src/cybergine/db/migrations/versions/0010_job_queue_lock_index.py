"""The job queue's fetch, whatever the planner believes of the queue's depth.

Procrastinate fetches a job by walking the waiting jobs in priority order and rejecting
each one whose lock (``conversation:…``, ``send:…``) another waiting or running job holds.
When a burst of customer messages queues a job each, the planner's statistics still
describe the nearly empty queue of a moment ago: it reads every waiting job, checks each
one's lock, and sorts them all to take the first. That check looks jobs up by lock, but
Procrastinate's only index with the lock among the waiting and running jobs leads with
the id, so each check read the whole index. Measured mid-burst with 1,100 waiting jobs:
one fetch read 26,000 buffers and took 86 ms of PostgreSQL's CPU, and a burst's fetches
grew with the square of its size.

Two changes: an index on the lock of waiting and running jobs, and no sorting inside the
fetch function, so that it walks Procrastinate's priority index in order and stops at the
first job it may take (the same fetch: 20 buffers, 0.3 ms).

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


FETCH = "procrastinate_fetch_job_v2(character varying[], bigint)"


def upgrade() -> None:
    op.execute(
        "CREATE INDEX cybergine_procrastinate_jobs_lock_idx ON procrastinate_jobs (lock) "
        "WHERE status IN ('todo', 'doing') AND lock IS NOT NULL"
    )
    op.execute(f"ALTER FUNCTION {FETCH} SET enable_sort = off")


def downgrade() -> None:
    op.execute(f"ALTER FUNCTION {FETCH} RESET enable_sort")
    op.execute("DROP INDEX cybergine_procrastinate_jobs_lock_idx")
