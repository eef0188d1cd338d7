"""Web chat widget: each assistant's public widget key, the origins allowed to embed it
and its appearance; internal notes as a message direction; each conversation's newest
message id, which keeps message ids in commit order.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("assistants", sa.Column("widget_key", sa.String(length=40), nullable=True))
    # Existing assistants get a key as unguessable as new ones (122 random bits).
    op.execute(
        "UPDATE assistants SET widget_key = 'wk_' || replace(gen_random_uuid()::text, '-', '')"
    )
    op.alter_column("assistants", "widget_key", nullable=False)
    op.add_column(
        "assistants",
        sa.Column(
            "allowed_origins",
            sa.ARRAY(sa.String(length=255)),
            nullable=False,
            server_default="{}",
        ),
    )
    op.add_column(
        "assistants",
        sa.Column(
            "widget",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default="{}",
        ),
    )
    op.alter_column("assistants", "allowed_origins", server_default=None)
    op.alter_column("assistants", "widget", server_default=None)
    op.create_unique_constraint(op.f("uq_assistants_widget_key"), "assistants", ["widget_key"])
    op.execute("ALTER TYPE message_direction ADD VALUE IF NOT EXISTS 'internal'")
    op.add_column("conversations", sa.Column("last_message_id", sa.UUID(), nullable=True))
    op.execute(
        "UPDATE conversations c SET last_message_id = (SELECT m.id FROM messages m "
        "WHERE m.conversation_id = c.id ORDER BY m.id DESC LIMIT 1)"
    )


def downgrade() -> None:
    op.drop_column("conversations", "last_message_id")
    # PostgreSQL cannot drop an enum value: notes are removed and the type rebuilt.
    op.execute("DELETE FROM messages WHERE direction = 'internal'")
    op.execute("ALTER TYPE message_direction RENAME TO message_direction_old")
    op.execute("CREATE TYPE message_direction AS ENUM ('inbound', 'outbound')")
    op.execute(
        "ALTER TABLE messages ALTER COLUMN direction TYPE message_direction "
        "USING direction::text::message_direction"
    )
    op.execute("DROP TYPE message_direction_old")
    op.drop_constraint(op.f("uq_assistants_widget_key"), "assistants", type_="unique")
    op.drop_column("assistants", "widget")
    op.drop_column("assistants", "allowed_origins")
    op.drop_column("assistants", "widget_key")
