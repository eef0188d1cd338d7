"""Staff users' rights over their own account: e-mail changes confirmed by a link, the
day a user was left without an organisation (erased 30 days later), and audit labels
kept apart from the hash chain so that erasing a person leaves it verifiable.

Existing audit entries are hash format 1 (their hash covers the actor's label); they are
marked so and keep verifying as they are. Their labels are copied to
``audit_actor_labels`` here; the application seals them and removes the labels from the
entries themselves (``privacy.audit.seal_legacy_entries``), since that needs the
server's key, which migrations do not hold.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each actor's newest label. Adding columns with a default and adding constraints fire
# no UPDATE trigger, so audit_events' append-only guard stays on throughout.
COPY_LABELS = """
INSERT INTO audit_actor_labels (id, actor_type, actor_id, label)
SELECT DISTINCT ON (actor_type, actor_id) gen_random_uuid(), actor_type, actor_id, actor_label
FROM audit_events
WHERE actor_id IS NOT NULL AND actor_label IS NOT NULL
ORDER BY actor_type, actor_id, seq DESC
"""


def _timestamps() -> list[sa.Column[object]]:
    return [
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
    ]


def upgrade() -> None:
    op.add_column(
        "audit_events",
        sa.Column("hash_format", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
    )
    # Every existing entry is format 1; new ones say their format themselves.
    op.alter_column("audit_events", "hash_format", server_default=None)
    op.add_column("audit_events", sa.Column("seal", sa.String(length=64), nullable=True))
    op.create_check_constraint(
        op.f("ck_audit_events_hash_format_known"), "audit_events", "hash_format IN (1, 2)"
    )
    op.create_check_constraint(
        op.f("ck_audit_events_seal_hex"), "audit_events", "seal ~ '^[0-9a-f]{64}$'"
    )
    op.create_check_constraint(
        op.f("ck_audit_events_label_only_in_legacy_entries"),
        "audit_events",
        "(hash_format = 1 OR (actor_label IS NULL AND seal IS NULL))"
        " AND (seal IS NULL OR actor_label IS NULL)",
    )
    op.create_table(
        "audit_actor_labels",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=320), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_actor_labels")),
        sa.UniqueConstraint(
            "actor_type", "actor_id", name=op.f("uq_audit_actor_labels_actor_type_actor_id")
        ),
    )
    op.execute(COPY_LABELS)

    op.add_column(
        "users",
        sa.Column("no_organisation_since", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "email_changes",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("new_email", sa.String(length=320), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_email_changes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_changes")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_email_changes_token_hash")),
    )
    op.create_index(op.f("ix_email_changes_user_id"), "email_changes", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_email_changes_user_id"), "email_changes")
    op.drop_table("email_changes")
    op.drop_column("users", "no_organisation_since")
    # The code before this revision hashes every entry as format 1: entries written
    # since (format 2) and sealed ones verify only with this revision's code.
    op.drop_table("audit_actor_labels")
    op.drop_constraint(
        op.f("ck_audit_events_label_only_in_legacy_entries"), "audit_events", type_="check"
    )
    op.drop_constraint(op.f("ck_audit_events_seal_hex"), "audit_events", type_="check")
    op.drop_constraint(op.f("ck_audit_events_hash_format_known"), "audit_events", type_="check")
    op.drop_column("audit_events", "seal")
    op.drop_column("audit_events", "hash_format")
