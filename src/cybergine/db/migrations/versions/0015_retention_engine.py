"""Retention periods and purges: an organisation's conversation retention period, and
the indexes the purge finds expired rows with (conversations by last activity, raw
webhook events by age).

Revision ID: 0015
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_settings",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("conversation_days", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_retention_settings_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_settings")),
        sa.UniqueConstraint("organisation_id", name=op.f("uq_retention_settings_organisation_id")),
    )
    op.create_index(
        op.f("ix_retention_settings_organisation_id"), "retention_settings", ["organisation_id"]
    )
    op.create_index(
        op.f("ix_conversations_organisation_id_last_message_at"),
        "conversations",
        ["organisation_id", "last_message_at"],
    )
    op.create_index(
        op.f("ix_whatsapp_webhook_events_created_at"), "whatsapp_webhook_events", ["created_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_whatsapp_webhook_events_created_at"), "whatsapp_webhook_events")
    op.drop_index(op.f("ix_conversations_organisation_id_last_message_at"), "conversations")
    op.drop_index(op.f("ix_retention_settings_organisation_id"), "retention_settings")
    op.drop_table("retention_settings")
