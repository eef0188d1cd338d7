"""Conversations and WhatsApp: customers with their consent record, conversations with
their state and handoff, messages with their delivery lifecycle, inbound media, the
organisation's WhatsApp numbers (token and app secret encrypted) and raw webhook events.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 02:38:34.899160
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cybergine.privacy.crypto import EncryptedString

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("channel", sa.Enum("whatsapp", "webchat", name="channel"), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("phone_number", sa.String(length=32), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("opted_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opt_in_source", sa.String(length=64), nullable=True),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opt_out_source", sa.String(length=64), nullable=True),
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
            name=op.f("fk_customers_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint(
            "organisation_id",
            "channel",
            "external_id",
            name=op.f("uq_customers_organisation_id_channel_external_id"),
        ),
    )
    op.create_index(
        op.f("ix_customers_organisation_id"), "customers", ["organisation_id"], unique=False
    )
    op.create_table(
        "whatsapp_numbers",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("assistant_id", sa.UUID(), nullable=True),
        sa.Column("phone_number_id", sa.String(length=64), nullable=False),
        sa.Column("waba_id", sa.String(length=64), nullable=False),
        sa.Column("display_phone_number", sa.String(length=32), nullable=False),
        sa.Column("access_token", EncryptedString(), nullable=False),
        sa.Column("app_secret", EncryptedString(), nullable=True),
        sa.Column("verify_token_sha256", sa.String(length=64), nullable=True),
        sa.Column("opt_out_keywords", sa.ARRAY(sa.String(length=50)), nullable=False),
        sa.Column("opt_in_keywords", sa.ARRAY(sa.String(length=50)), nullable=False),
        sa.Column("send_rate", sa.Float(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("next_send_at", sa.DateTime(timezone=True), nullable=True),
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
            ["assistant_id"],
            ["assistants.id"],
            name=op.f("fk_whatsapp_numbers_assistant_id_assistants"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_whatsapp_numbers_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whatsapp_numbers")),
        sa.UniqueConstraint("phone_number_id", name=op.f("uq_whatsapp_numbers_phone_number_id")),
    )
    op.create_index(
        op.f("ix_whatsapp_numbers_assistant_id"), "whatsapp_numbers", ["assistant_id"], unique=False
    )
    op.create_index(
        op.f("ix_whatsapp_numbers_organisation_id"),
        "whatsapp_numbers",
        ["organisation_id"],
        unique=False,
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column(
            "channel",
            postgresql.ENUM("whatsapp", "webchat", name="channel", create_type=False),
            nullable=False,
        ),
        sa.Column("customer_id", sa.UUID(), nullable=False),
        sa.Column("assistant_id", sa.UUID(), nullable=True),
        sa.Column("whatsapp_number_id", sa.UUID(), nullable=True),
        sa.Column(
            "state",
            sa.Enum("bot", "waiting_for_human", "human", "closed", name="conversation_state"),
            nullable=False,
        ),
        sa.Column("assigned_user_id", sa.UUID(), nullable=True),
        sa.Column("human_review_requested", sa.Boolean(), nullable=False),
        sa.Column("handoff_reason", sa.Text(), nullable=True),
        sa.Column("handoff_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ai_disclosed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unread_count", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
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
            ["assigned_user_id"],
            ["users.id"],
            name=op.f("fk_conversations_assigned_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["assistant_id"],
            ["assistants.id"],
            name=op.f("fk_conversations_assistant_id_assistants"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_conversations_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_conversations_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["whatsapp_number_id"],
            ["whatsapp_numbers.id"],
            name=op.f("fk_conversations_whatsapp_number_id_whatsapp_numbers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_index(
        op.f("ix_conversations_assigned_user_id"),
        "conversations",
        ["assigned_user_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_conversations_assistant_id"), "conversations", ["assistant_id"], unique=False
    )
    op.create_index(
        op.f("ix_conversations_customer_id"), "conversations", ["customer_id"], unique=False
    )
    op.create_index(
        op.f("ix_conversations_organisation_id"), "conversations", ["organisation_id"], unique=False
    )
    op.create_index(
        op.f("ix_conversations_organisation_id_state_last_message_at"),
        "conversations",
        ["organisation_id", "state", "last_message_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_conversations_whatsapp_number_id"),
        "conversations",
        ["whatsapp_number_id"],
        unique=False,
    )
    op.create_index(
        "uq_conversations_open",
        "conversations",
        ["customer_id", "whatsapp_number_id"],
        unique=True,
        postgresql_where=sa.text("state <> 'closed'"),
        postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "whatsapp_webhook_events",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("whatsapp_number_id", sa.UUID(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("statuses", sa.Integer(), nullable=False),
        sa.Column("problems", sa.Text(), nullable=True),
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
            name=op.f("fk_whatsapp_webhook_events_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["whatsapp_number_id"],
            ["whatsapp_numbers.id"],
            name=op.f("fk_whatsapp_webhook_events_whatsapp_number_id_whatsapp_numbers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whatsapp_webhook_events")),
    )
    op.create_index(
        op.f("ix_whatsapp_webhook_events_organisation_id"),
        "whatsapp_webhook_events",
        ["organisation_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_whatsapp_webhook_events_whatsapp_number_id"),
        "whatsapp_webhook_events",
        ["whatsapp_number_id"],
        unique=False,
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("conversation_id", sa.UUID(), nullable=False),
        sa.Column(
            "direction", sa.Enum("inbound", "outbound", name="message_direction"), nullable=False
        ),
        sa.Column(
            "sender",
            sa.Enum("customer", "assistant", "agent", "system", name="message_sender"),
            nullable=False,
        ),
        sa.Column("author_user_id", sa.UUID(), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("context_external_id", sa.String(length=200), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "queued",
                "sending",
                "sent",
                "delivered",
                "read",
                "failed",
                name="message_status",
            ),
            nullable=False,
        ),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_title", sa.String(length=300), nullable=True),
        sa.Column("error_detail", sa.Text(), nullable=True),
        sa.Column("reply_to_id", sa.UUID(), nullable=True),
        sa.Column("sources", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("grounded", sa.Boolean(), nullable=True),
        sa.Column("llm_provider", sa.String(length=100), nullable=True),
        sa.Column("llm_model", sa.String(length=100), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("send_attempts", sa.Integer(), nullable=False),
        sa.Column("send_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
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
            ["author_user_id"],
            ["users.id"],
            name=op.f("fk_messages_author_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_messages_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reply_to_id"],
            ["messages.id"],
            name=op.f("fk_messages_reply_to_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("reply_to_id", name=op.f("uq_messages_reply_to_id")),
    )
    op.create_index(
        op.f("ix_messages_conversation_id_created_at"),
        "messages",
        ["conversation_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_messages_organisation_id"), "messages", ["organisation_id"], unique=False
    )
    op.create_index(
        "uq_messages_external_id",
        "messages",
        ["organisation_id", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.create_table(
        "message_attachments",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("message_id", sa.UUID(), nullable=False),
        sa.Column("media_id", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "stored", "rejected", "failed", name="attachment_status"),
            nullable=False,
        ),
        sa.Column("mime_type", sa.String(length=100), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
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
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_attachments_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_message_attachments_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_attachments")),
        sa.UniqueConstraint("message_id", name=op.f("uq_message_attachments_message_id")),
    )
    op.create_index(
        op.f("ix_message_attachments_organisation_id"),
        "message_attachments",
        ["organisation_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_message_attachments_organisation_id"), table_name="message_attachments")
    op.drop_table("message_attachments")
    op.drop_index(
        "uq_messages_external_id",
        table_name="messages",
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.drop_index(op.f("ix_messages_organisation_id"), table_name="messages")
    op.drop_index(op.f("ix_messages_conversation_id_created_at"), table_name="messages")
    op.drop_table("messages")
    op.drop_index(
        op.f("ix_whatsapp_webhook_events_whatsapp_number_id"), table_name="whatsapp_webhook_events"
    )
    op.drop_index(
        op.f("ix_whatsapp_webhook_events_organisation_id"), table_name="whatsapp_webhook_events"
    )
    op.drop_table("whatsapp_webhook_events")
    op.drop_index(
        "uq_conversations_open",
        table_name="conversations",
        postgresql_where=sa.text("state <> 'closed'"),
        postgresql_nulls_not_distinct=True,
    )
    op.drop_index(op.f("ix_conversations_whatsapp_number_id"), table_name="conversations")
    op.drop_index(
        op.f("ix_conversations_organisation_id_state_last_message_at"), table_name="conversations"
    )
    op.drop_index(op.f("ix_conversations_organisation_id"), table_name="conversations")
    op.drop_index(op.f("ix_conversations_customer_id"), table_name="conversations")
    op.drop_index(op.f("ix_conversations_assistant_id"), table_name="conversations")
    op.drop_index(op.f("ix_conversations_assigned_user_id"), table_name="conversations")
    op.drop_table("conversations")
    op.drop_index(op.f("ix_whatsapp_numbers_organisation_id"), table_name="whatsapp_numbers")
    op.drop_index(op.f("ix_whatsapp_numbers_assistant_id"), table_name="whatsapp_numbers")
    op.drop_table("whatsapp_numbers")
    op.drop_index(op.f("ix_customers_organisation_id"), table_name="customers")
    op.drop_table("customers")
    for name in (
        "attachment_status",
        "message_status",
        "message_sender",
        "message_direction",
        "conversation_state",
        "channel",
    ):
        sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
