"""Data-subject requests, tracked: the ``privacy_requests`` table, and the customer's
restriction of processing and objection to the assistant.

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENUMS = {
    "privacy_request_kind": (
        "access",
        "portability",
        "rectification",
        "erasure",
        "restriction",
        "objection",
        "human_review",
    ),
    "privacy_request_channel": ("whatsapp", "webchat", "dashboard", "api", "email"),
    "privacy_request_verification": ("unverified", "verified", "failed"),
    "privacy_request_verification_method": (
        "same_channel",
        "known_details",
        "document",
        "signed_in",
    ),
    "privacy_request_status": ("open", "in_progress", "done", "refused"),
    "privacy_request_refusal_reason": (
        "identity_not_verified",
        "legal_retention",
        "manifestly_unfounded",
        "duplicate",
        "no_data_held",
        "withdrawn",
    ),
}


def _enum(name: str) -> postgresql.ENUM:
    return postgresql.ENUM(*_ENUMS[name], name=name, create_type=False)


def _at(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    for name, values in _ENUMS.items():
        postgresql.ENUM(*values, name=name).create(op.get_bind())

    op.add_column("customers", _at("processing_restricted_at"))
    op.add_column("customers", _at("objected_at"))

    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("kind", _enum("privacy_request_kind"), nullable=False),
        sa.Column("customer_id", sa.UUID(), nullable=True),
        sa.Column("user_id", sa.UUID(), nullable=True),
        sa.Column("channel", _enum("privacy_request_channel"), nullable=False),
        sa.Column("message_id", sa.UUID(), nullable=True),
        _at("received_at", nullable=False),
        _at("due_at", nullable=False),
        sa.Column("verification", _enum("privacy_request_verification"), nullable=False),
        sa.Column(
            "verification_method", _enum("privacy_request_verification_method"), nullable=True
        ),
        sa.Column("verified_by_user_id", sa.UUID(), nullable=True),
        _at("verified_at"),
        sa.Column("status", _enum("privacy_request_status"), nullable=False),
        sa.Column("refusal_reason", _enum("privacy_request_refusal_reason"), nullable=True),
        _at("closed_at"),
        sa.Column("overdue_notified_on", sa.Date(), nullable=True),
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
            "customer_id IS NULL OR user_id IS NULL", name=op.f("ck_privacy_requests_one_subject")
        ),
        sa.CheckConstraint(
            "(status = 'refused') = (refusal_reason IS NOT NULL)",
            name=op.f("ck_privacy_requests_refused_with_reason"),
        ),
        sa.CheckConstraint(
            "(verification = 'unverified') = (verification_method IS NULL)",
            name=op.f("ck_privacy_requests_verified_how"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_privacy_requests_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_privacy_requests_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_privacy_requests_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["verified_by_user_id"],
            ["users.id"],
            name=op.f("fk_privacy_requests_verified_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_requests")),
    )
    op.create_index(
        op.f("ix_privacy_requests_organisation_id"), "privacy_requests", ["organisation_id"]
    )
    op.create_index(op.f("ix_privacy_requests_customer_id"), "privacy_requests", ["customer_id"])
    op.create_index(op.f("ix_privacy_requests_user_id"), "privacy_requests", ["user_id"])
    op.create_index(
        op.f("ix_privacy_requests_organisation_id_status_due_at"),
        "privacy_requests",
        ["organisation_id", "status", "due_at"],
    )


def downgrade() -> None:
    op.drop_table("privacy_requests")
    op.drop_column("customers", "objected_at")
    op.drop_column("customers", "processing_restricted_at")
    for name in reversed(_ENUMS):
        postgresql.ENUM(name=name).drop(op.get_bind())
