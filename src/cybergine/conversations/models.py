"""Customers, their conversations with an assistant, and the messages of those
conversations (retention: conversation history, policy §11).

A customer is one person on one channel (a WhatsApp id, a web-chat visitor), with the
consent record policy §9 asks for. A conversation has one open instance per customer and
channel account at a time; closing it lets the next message start a new one. Messages
move through a delivery lifecycle (queued → sending → sent → delivered → read, or failed)
whose order the database enum encodes, so status webhooks arriving out of order can only
move a message forward.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin, value_enum
from cybergine.privacy.retention import Retention


class Channel(enum.StrEnum):
    WHATSAPP = "whatsapp"
    WEBCHAT = "webchat"


class ConversationState(enum.StrEnum):
    BOT = "bot"  # the assistant answers
    WAITING_FOR_HUMAN = "waiting_for_human"  # handed off; the assistant is silent
    HUMAN = "human"  # an agent has taken over
    CLOSED = "closed"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    # An agent's note for the team: never sent to the customer.
    INTERNAL = "internal"


class Sender(enum.StrEnum):
    CUSTOMER = "customer"
    ASSISTANT = "assistant"
    AGENT = "agent"
    # Notices the platform sends on its own: opt-out and opt-in confirmations, handoff.
    SYSTEM = "system"


class MessageStatus(enum.StrEnum):
    # Declaration order is the lifecycle order; the database compares enum values by it.
    RECEIVED = "received"  # inbound
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class AttachmentStatus(enum.StrEnum):
    PENDING = "pending"
    STORED = "stored"
    REJECTED = "rejected"  # type or size not accepted
    FAILED = "failed"  # could not be fetched


# An erased customer's external id: the customer's own id behind this prefix, so the row
# names nobody and the same person writing again starts afresh (policy §14).
ERASED_PREFIX = "erased:"


class Customer(TenantMixin, Base):
    """A person writing to the organisation on one channel."""

    __tablename__ = "customers"
    __retention__ = Retention.CONVERSATION
    __table_args__ = (UniqueConstraint("organisation_id", "channel", "external_id"),)

    channel: Mapped[Channel] = mapped_column(value_enum(Channel, "channel"))
    # WhatsApp: the wa_id; web chat: the anonymous visitor id.
    external_id: Mapped[str] = mapped_column(String(128))
    phone_number: Mapped[str | None] = mapped_column(String(32), default=None)  # E.164
    display_name: Mapped[str | None] = mapped_column(String(200), default=None)
    # Policy §9: consent is recorded with its time and source ("customer_message",
    # "keyword:START", "api"); an opt-out stops everything but its one confirmation.
    opted_in_at: Mapped[datetime | None] = mapped_column(default=None)
    opt_in_source: Mapped[str | None] = mapped_column(String(64), default=None)
    opted_out_at: Mapped[datetime | None] = mapped_column(default=None)
    opt_out_source: Mapped[str | None] = mapped_column(String(64), default=None)
    # Policy §14 (``privacy.requests``): restriction freezes processing (messages are
    # stored, nothing answers them or goes to a model); an objection leaves them to people.
    processing_restricted_at: Mapped[datetime | None] = mapped_column(default=None)
    objected_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None

    @property
    def erased(self) -> bool:
        """Their personal data was erased: their conversations are closed for good."""
        return self.external_id.startswith(ERASED_PREFIX)


class Conversation(TenantMixin, Base):
    __tablename__ = "conversations"
    __retention__ = Retention.CONVERSATION
    __table_args__ = (
        # One open conversation per customer and channel account; NULLS NOT DISTINCT so
        # channels without an account (web chat) get the same guarantee.
        Index(
            "uq_conversations_open",
            "customer_id",
            "whatsapp_number_id",
            unique=True,
            postgresql_where=text("state <> 'closed'"),
            postgresql_nulls_not_distinct=True,
        ),
        Index(None, "organisation_id", "state", "last_message_at"),
        # The retention purge finds conversations inactive for an organisation's period.
        Index(None, "organisation_id", "last_message_at"),
        # A plan's monthly allowance counts the conversations begun this month.
        Index(None, "organisation_id", "created_at"),
        # The analytics refresh finds the conversations changed since its last run: a
        # BRIN index (a summary per 8 pages, no entry per row) costs writers nearly nothing.
        Index(
            "ix_conversations_updated_at",
            "updated_at",
            postgresql_using="brin",
            postgresql_with={"pages_per_range": 8, "autosummarize": "on"},
        ),
    )

    channel: Mapped[Channel] = mapped_column(value_enum(Channel, "channel"))
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    assistant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("assistants.id", ondelete="SET NULL"), index=True, default=None
    )
    whatsapp_number_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("whatsapp_numbers.id", ondelete="SET NULL"), index=True, default=None
    )
    state: Mapped[ConversationState] = mapped_column(
        value_enum(ConversationState, "conversation_state"), default=ConversationState.BOT
    )
    assigned_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    # Policy §7: the customer asked for a person to review an automated decision.
    human_review_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    handoff_reason: Mapped[str | None] = mapped_column(Text, default=None)
    handoff_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set by the first reply, which carries the AI disclosure (policy §7).
    ai_disclosed_at: Mapped[datetime | None] = mapped_column(default=None)
    # WhatsApp's customer-service window is measured from the customer's last message.
    last_inbound_at: Mapped[datetime | None] = mapped_column(default=None)
    last_message_at: Mapped[datetime | None] = mapped_column(default=None)
    unread_count: Mapped[int] = mapped_column(Integer, default=0)
    # The id of the newest message. Messages are written under this row's lock and get
    # an id above it, so ids follow commit order and "after id X" misses nothing.
    last_message_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)


class Message(TenantMixin, Base):
    __tablename__ = "messages"
    __retention__ = Retention.CONVERSATION
    # A partition per year of ids (db.partitions), dropped whole once all its messages
    # have expired. Each partition has unique indexes of its own of what is unique
    # without ``id``: (organisation_id, external_id), the idempotency of webhook
    # deliveries, the lookup of status updates, and the partition's index of its
    # organisation's rows; and reply_to_id.
    __organisation_index__ = False
    __table_args__ = (
        Index(None, "conversation_id", "created_at"),
        # "After message X" reads (widget sockets, long polls) walk this one.
        Index(None, "conversation_id", "id"),
        {"postgresql_partition_by": "RANGE (id)"},
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    direction: Mapped[Direction] = mapped_column(value_enum(Direction, "message_direction"))
    sender: Mapped[Sender] = mapped_column(value_enum(Sender, "message_sender"))
    author_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # As the channel names it: text, image, interactive, template, location, ...
    type: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text, default=None)
    # The rest of the content: media reference, location, chosen button, template, buttons.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    external_id: Mapped[str | None] = mapped_column(String(200), default=None)
    # The customer message this one quotes (WhatsApp context).
    context_external_id: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[MessageStatus] = mapped_column(value_enum(MessageStatus, "message_status"))
    error_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error_title: Mapped[str | None] = mapped_column(String(300), default=None)
    error_detail: Mapped[str | None] = mapped_column(Text, default=None)
    # The inbound message an assistant reply answers: unique (in each partition), so a
    # retried reply job finds its earlier work instead of answering twice.
    reply_to_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    # [{"number": 1, "title": ..., "item_id": ..., "score": ...}] for grounded answers.
    sources: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB, default=None)
    grounded: Mapped[bool | None] = mapped_column(Boolean, default=None)
    llm_provider: Mapped[str | None] = mapped_column(String(100), default=None)
    llm_model: Mapped[str | None] = mapped_column(String(100), default=None)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    send_attempts: Mapped[int] = mapped_column(Integer, default=0)
    send_started_at: Mapped[datetime | None] = mapped_column(default=None)
    # Inbound: when the customer sent it; outbound: when the channel accepted it.
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    read_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)


class Attachment(TenantMixin, Base):
    """A media file a customer sent, fetched from the channel and kept with its message."""

    __tablename__ = "message_attachments"
    __retention__ = Retention.CONVERSATION

    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    media_id: Mapped[str] = mapped_column(String(200))  # the channel's id for the file
    status: Mapped[AttachmentStatus] = mapped_column(
        value_enum(AttachmentStatus, "attachment_status"), default=AttachmentStatus.PENDING
    )
    mime_type: Mapped[str | None] = mapped_column(String(100), default=None)
    filename: Mapped[str | None] = mapped_column(String(255), default=None)
    size_bytes: Mapped[int | None] = mapped_column(Integer, default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    data: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
