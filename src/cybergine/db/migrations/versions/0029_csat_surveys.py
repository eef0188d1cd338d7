"""Customer satisfaction surveys: each assistant's setting (whether a survey follows a
closed conversation, and its question), the surveys sent with the rating each got, and
the hourly aggregates' counts of them.

Existing assistants keep sending nothing new (``csat_enabled`` false): a merchant turns
the survey on for them; assistants created from now on have it on.

Revision ID: 0029
Revises: 0028
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HOURLY = ("csat_surveys_sent", "csat_responses", "csat_positive")


def upgrade() -> None:
    op.add_column(
        "assistants",
        sa.Column("csat_enabled", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("assistants", sa.Column("csat_question", sa.Text(), nullable=True))

    op.create_table(
        "csat_surveys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="ck_csat_surveys_rating_range"),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_csat_surveys_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_csat_surveys_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name="fk_csat_surveys_customer_id_customers",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_csat_surveys_message_id_messages",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_csat_surveys"),
        sa.UniqueConstraint("conversation_id", name="uq_csat_surveys_conversation_id"),
    )
    op.create_index("ix_csat_surveys_organisation_id", "csat_surveys", ["organisation_id"])
    op.create_index(
        "ix_csat_surveys_customer_id_created_at", "csat_surveys", ["customer_id", "created_at"]
    )

    for name in _HOURLY:
        op.add_column(
            "analytics_hourly",
            sa.Column(name, sa.BigInteger(), server_default="0", nullable=False),
        )
        op.alter_column("analytics_hourly", name, server_default=None)


def downgrade() -> None:
    for name in _HOURLY:
        op.drop_column("analytics_hourly", name)
    op.drop_index("ix_csat_surveys_customer_id_created_at", table_name="csat_surveys")
    op.drop_index("ix_csat_surveys_organisation_id", table_name="csat_surveys")
    op.drop_table("csat_surveys")
    op.drop_column("assistants", "csat_question")
    op.drop_column("assistants", "csat_enabled")
