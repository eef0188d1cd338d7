"""Fin's answer and deflection rates: a conversation's row of figures and the hourly
aggregates count the conversations with a grounded answer and those the assistant
answered that were never handed to a person.

The rows written before lack them, so the refresh marks are removed: the next refresh
recomputes every row and aggregate from the raw rows, as a rebuild does.

Revision ID: 0044
Revises: 0043
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0044"
down_revision: str | None = "0043"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FACTS = "analytics_conversations"
_HOURLY = "analytics_hourly"
_FIGURES = ("with_grounded_answer", "deflected")


def upgrade() -> None:
    for name in _FIGURES:
        op.add_column(
            _FACTS, sa.Column(name, sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        # Filled for the rows there are, then written by every refresh like its neighbours.
        op.add_column(_HOURLY, sa.Column(name, sa.BigInteger(), server_default="0", nullable=False))
        op.alter_column(_HOURLY, name, server_default=None)
    op.execute("DELETE FROM analytics_refresh_marks")


def downgrade() -> None:
    for name in _FIGURES:
        op.drop_column(_HOURLY, name)
        op.drop_column(_FACTS, name)
    op.execute("DELETE FROM analytics_refresh_marks")
