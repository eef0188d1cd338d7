"""Knowledge gaps: the questions the assistant could not answer from the knowledge base,
each with its vector and its group of questions of the same meaning, and each
organisation's collection mark.

Revision ID: 0031
Revises: 0030
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DIMENSIONS = 384


def _head(table: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
    ]


def _tail(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=f"fk_{table}_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    ]


def upgrade() -> None:
    op.create_table(
        "knowledge_gap_groups",
        *_head("knowledge_gap_groups"),
        sa.Column("centroid", Vector(_DIMENSIONS), nullable=False),
        sa.Column("embedding_model", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer_item_id", sa.Uuid(), nullable=True),
        *_tail("knowledge_gap_groups"),
        sa.ForeignKeyConstraint(
            ["answer_item_id"],
            ["kb_items.id"],
            name="fk_knowledge_gap_groups_answer_item_id_kb_items",
            ondelete="SET NULL",
        ),
    )
    op.create_index(
        "ix_knowledge_gap_groups_organisation_id", "knowledge_gap_groups", ["organisation_id"]
    )
    op.create_table(
        "knowledge_gap_questions",
        *_head("knowledge_gap_questions"),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("assistant_id", sa.Uuid(), nullable=True),
        sa.Column("channel", postgresql.ENUM(name="channel", create_type=False), nullable=False),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=True),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("embedding", Vector(_DIMENSIONS), nullable=False),
        sa.Column("embedding_model", sa.String(100), nullable=False),
        *_tail("knowledge_gap_questions"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_knowledge_gap_questions_message_id_messages",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_knowledge_gap_questions_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["knowledge_gap_groups.id"],
            name="fk_knowledge_gap_questions_group_id_knowledge_gap_groups",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("message_id", name="uq_knowledge_gap_questions_message_id"),
    )
    for columns in (["organisation_id"], ["conversation_id"]):
        op.create_index(
            f"ix_knowledge_gap_questions_{columns[0]}", "knowledge_gap_questions", columns
        )
    for columns in (["organisation_id", "created_at"], ["group_id", "created_at"]):
        op.create_index(
            f"ix_knowledge_gap_questions_{'_'.join(columns)}", "knowledge_gap_questions", columns
        )
    op.create_table(
        "knowledge_gap_marks",
        *_head("knowledge_gap_marks"),
        sa.Column("collected_until", sa.DateTime(timezone=True), nullable=False),
        *_tail("knowledge_gap_marks"),
        sa.UniqueConstraint("organisation_id", name="uq_knowledge_gap_marks_organisation_id"),
    )
    op.create_index(
        "ix_knowledge_gap_marks_organisation_id", "knowledge_gap_marks", ["organisation_id"]
    )


def downgrade() -> None:
    for table in ("knowledge_gap_marks", "knowledge_gap_questions", "knowledge_gap_groups"):
        op.drop_table(table)
