"""Assistants: per organisation, AI assistants with their persona, instructions, tone,
languages, knowledge collections, language model (the key encrypted), business hours and
hand-off keywords; check constraints keep the AI disclosure and fallback non-empty.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 02:08:58.688357
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cybergine.privacy.crypto import EncryptedString

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assistants",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("persona", sa.Text(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column(
            "tone",
            sa.Enum("friendly", "professional", "concise", "playful", name="assistant_tone"),
            nullable=False,
        ),
        sa.Column("languages", sa.ARRAY(sa.String(length=35)), nullable=False),
        sa.Column("greeting", sa.Text(), nullable=False),
        sa.Column("fallback_message", sa.Text(), nullable=False),
        sa.Column("ai_disclosure", sa.Text(), nullable=False),
        sa.Column("knowledge_collections", sa.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column(
            "llm_provider",
            sa.Enum("extractive", "openai", name="assistant_llm_provider"),
            nullable=False,
        ),
        sa.Column("llm_model", sa.String(length=100), nullable=False),
        sa.Column("llm_base_url", sa.String(length=500), nullable=True),
        sa.Column("llm_api_key", EncryptedString(), nullable=True),
        sa.Column("temperature", sa.Float(), nullable=False),
        sa.Column("max_tokens", sa.Integer(), nullable=False),
        sa.Column("redact_personal_data", sa.Boolean(), nullable=False),
        sa.Column("business_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("handoff_keywords", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
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
        sa.CheckConstraint(
            "btrim(ai_disclosure) <> ''", name=op.f("ck_assistants_ai_disclosure_not_empty")
        ),
        sa.CheckConstraint(
            "btrim(fallback_message) <> ''", name=op.f("ck_assistants_fallback_message_not_empty")
        ),
        sa.CheckConstraint(
            "max_tokens BETWEEN 1 AND 4096", name=op.f("ck_assistants_max_tokens_range")
        ),
        sa.CheckConstraint(
            "temperature >= 0 AND temperature <= 2.0", name=op.f("ck_assistants_temperature_range")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_assistants_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistants")),
        sa.UniqueConstraint(
            "organisation_id", "name", name=op.f("uq_assistants_organisation_id_name")
        ),
    )
    op.create_index(
        op.f("ix_assistants_organisation_id"), "assistants", ["organisation_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_assistants_organisation_id"), table_name="assistants")
    op.drop_table("assistants")
    for name in ("assistant_llm_provider", "assistant_tone"):
        sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
