"""A WhatsApp number's health, as its page in the dashboard shows it: when the last
webhook arrived, and the last error (a send Meta refused, a webhook that did not verify).

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "whatsapp_numbers",
        sa.Column("last_webhook_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("whatsapp_numbers", sa.Column("last_error", sa.String(500), nullable=True))
    op.add_column(
        "whatsapp_numbers",
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("whatsapp_numbers", "last_error_at")
    op.drop_column("whatsapp_numbers", "last_error")
    op.drop_column("whatsapp_numbers", "last_webhook_at")
