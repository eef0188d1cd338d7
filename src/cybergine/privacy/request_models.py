"""A data-subject request (policy §14 and §15) as the team tracks it: what right it
exercises, whose data, where it came from, whether the person was verified, by when it
is due, and how it ended. What was done is in the audit trail, whose entries name the
request (``target_type="privacy_request"``).

Retention: ``ACCOUNT``. The row is the organisation's working record of the request and
goes with the account (its life + 30 days, §11); the proof that a right was honoured is
the audit trail (``AUDIT``, 7 years), whose entries hold the request's id, kind and
outcome and outlive the organisation. The row holds no one's words: reasons and ways of
verifying are fixed values, and the subject is an id.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin, value_enum
from cybergine.db.retention import Retention

# Policy §14: "We will respond within 30 days." (the due date; what the chat promises)
RESPONSE_DAYS = 30


class RequestKind(enum.StrEnum):
    ACCESS = "access"
    PORTABILITY = "portability"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    HUMAN_REVIEW = "human_review"  # of a decision based solely on automated processing


class RequestChannel(enum.StrEnum):
    WHATSAPP = "whatsapp"
    WEBCHAT = "webchat"
    DASHBOARD = "dashboard"
    API = "api"
    EMAIL = "email"
    # Shopify's customers/data_request webhook, for a shop's customer (``shopify.compliance``).
    SHOPIFY = "shopify"


class Verification(enum.StrEnum):
    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    FAILED = "failed"


class VerificationMethod(enum.StrEnum):
    # The request came from the customer's own WhatsApp number or browser conversation.
    SAME_CHANNEL = "same_channel"
    # They confirmed details only they know (an order number, the e-mail on an account).
    KNOWN_DETAILS = "known_details"
    # An identity document or a signed letter was checked.
    DOCUMENT = "document"
    # A staff user making a request about their own account, signed in.
    SIGNED_IN = "signed_in"


class RequestStatus(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    REFUSED = "refused"


class RefusalReason(enum.StrEnum):
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    LEGAL_RETENTION = "legal_retention"  # §14: erasure "subject to legal retention"
    MANIFESTLY_UNFOUNDED = "manifestly_unfounded"
    DUPLICATE = "duplicate"
    NO_DATA_HELD = "no_data_held"
    WITHDRAWN = "withdrawn"  # the person no longer wants it


class PrivacyRequest(TenantMixin, Base):
    __tablename__ = "privacy_requests"
    __retention__ = Retention.ACCOUNT
    __table_args__ = (
        # A customer's or a staff user's request; neither once the subject is gone.
        CheckConstraint("customer_id IS NULL OR user_id IS NULL", name="one_subject"),
        CheckConstraint(
            "(status = 'refused') = (refusal_reason IS NOT NULL)", name="refused_with_reason"
        ),
        CheckConstraint(
            "(verification = 'unverified') = (verification_method IS NULL)",
            name="verified_how",
        ),
        # The list: open ones by due date.
        Index(None, "organisation_id", "status", "due_at"),
    )

    kind: Mapped[RequestKind] = mapped_column(value_enum(RequestKind, "privacy_request_kind"))
    # SET NULL: erasing a web visitor replaces their row; the service points the request
    # at the new one.
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True, default=None
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    channel: Mapped[RequestChannel] = mapped_column(
        value_enum(RequestChannel, "privacy_request_channel")
    )
    # The customer's message that asked, when it came from the chat.
    message_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    received_at: Mapped[datetime]
    due_at: Mapped[datetime]
    verification: Mapped[Verification] = mapped_column(
        value_enum(Verification, "privacy_request_verification"), default=Verification.UNVERIFIED
    )
    verification_method: Mapped[VerificationMethod | None] = mapped_column(
        value_enum(VerificationMethod, "privacy_request_verification_method"), default=None
    )
    verified_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[RequestStatus] = mapped_column(
        value_enum(RequestStatus, "privacy_request_status"), default=RequestStatus.OPEN
    )
    refusal_reason: Mapped[RefusalReason | None] = mapped_column(
        value_enum(RefusalReason, "privacy_request_refusal_reason"), default=None
    )
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    # The day owners were last told it is overdue: at most one e-mail a day.
    overdue_notified_on: Mapped[date | None] = mapped_column(default=None)
