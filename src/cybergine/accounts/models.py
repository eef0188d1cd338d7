"""Accounts: organisations (the tenants), users, their memberships and roles, invitations,
API keys, browser sessions, password resets and sign-in attempts."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin
from cybergine.privacy.retention import Retention


class OrganisationStatus(enum.StrEnum):
    ACTIVE = "active"
    # Deleted by its owner; erased for good when the grace period ends (policy §11).
    PENDING_DELETION = "pending_deletion"
    # Its Shopify shop uninstalled the app: hidden from every surface (sign-in, API,
    # widget) until the app is installed again, or erased by Shopify's shop/redact.
    SHOP_UNINSTALLED = "shop_uninstalled"


class Organisation(Base):
    __tablename__ = "organisations"
    __retention__ = Retention.ACCOUNT
    __table_args__ = (
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
        CheckConstraint(
            "(status = 'pending_deletion') = (erase_after IS NOT NULL)",
            name="erase_after_iff_pending",
        ),
    )

    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[OrganisationStatus] = mapped_column(
        Enum(
            OrganisationStatus,
            name="organisation_status",
            values_callable=lambda e: [m.value for m in e],
        ),
        default=OrganisationStatus.ACTIVE,
        server_default=OrganisationStatus.ACTIVE.value,
    )
    # Set while pending deletion: when the erasure job may run.
    erase_after: Mapped[datetime | None] = mapped_column(default=None)


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    AGENT = "agent"
    VIEWER = "viewer"


def _role_enum() -> Enum:
    return Enum(Role, name="role", values_callable=lambda e: [m.value for m in e])


class User(Base):
    """A person who signs in to the dashboard. Global: one user may belong to several
    organisations. The password is kept only as an argon2id hash."""

    __tablename__ = "users"
    __retention__ = Retention.ACCOUNT

    email: Mapped[str] = mapped_column(String(320), unique=True)  # normalised, lower case
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    password_changed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    # Since when the user belongs to no organisation (set and cleared by the periodic
    # ``accounts.service.user_erasure.erase_departed``): erased 30 days after (§11).
    no_organisation_since: Mapped[datetime | None] = mapped_column(default=None)
    # When they last acknowledged a notice of a new privacy policy version (§18): the
    # dashboard shows the versions recorded since (``privacy_policy.service``).
    policy_acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)


class Membership(TenantMixin, Base):
    __tablename__ = "memberships"
    __retention__ = Retention.ACCOUNT
    __table_args__ = (UniqueConstraint("organisation_id", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(_role_enum())


class Invitation(TenantMixin, Base):
    """A single-use, expiring link that makes its holder a member with ``role``."""

    __tablename__ = "invitations"
    __retention__ = Retention.ACCOUNT

    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[Role] = mapped_column(_role_enum())
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiKey(TenantMixin, Base):
    """A credential for ``/api/v1``. Only a hash of the secret is stored; the prefix is
    shown so people can tell their keys apart."""

    __tablename__ = "api_keys"
    __retention__ = Retention.ACCOUNT

    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(_role_enum())
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class UserSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is stored, so
    a database leak yields no usable session. Deleting the row signs the browser out."""

    __tablename__ = "user_sessions"
    __retention__ = Retention.OPERATIONAL

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    active_organisation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), default=None
    )
    last_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(index=True)


class PasswordResetToken(Base):
    __tablename__ = "password_reset_tokens"
    __retention__ = Retention.OPERATIONAL

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class EmailChange(Base):
    """A new e-mail address waiting for its owner to confirm it, by a single-use link
    sent there; the address on the account changes only then."""

    __tablename__ = "email_changes"
    __retention__ = Retention.OPERATIONAL

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    new_email: Mapped[str] = mapped_column(String(320))  # normalised, lower case
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class LoginAttempt(Base):
    """One sign-in attempt, for throttling. The account and the IP address are stored only
    as keyed hashes: enough to count attempts, useless to anyone reading the table."""

    __tablename__ = "login_attempts"
    __retention__ = Retention.OPERATIONAL
    __table_args__ = (Index(None, "key_hash", "created_at"),)

    key_hash: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool]
