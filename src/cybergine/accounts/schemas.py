"""API shapes of the accounts domain."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cybergine.accounts.models import OrganisationStatus, Role


class OrganisationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    status: OrganisationStatus
    erase_after: datetime | None
    created_at: datetime


class OrganisationUpdate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class MemberOut(BaseModel):
    id: uuid.UUID = Field(description="The membership id.")
    user_id: uuid.UUID
    name: str
    email: str
    role: Role
    joined_at: datetime


class MemberUpdate(BaseModel):
    role: Role


class InvitationIn(BaseModel):
    email: str = Field(max_length=320)
    role: Role


class InvitationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    role: Role
    expires_at: datetime
    created_at: datetime


class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Role = Role.ADMIN


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The whole key. Shown only in this response.")


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    at: datetime
    actor_type: str
    actor_id: str | None
    actor_label: str | None
    action: str
    target_type: str | None
    target_id: str | None
    details: dict[str, object]


class AccountOut(BaseModel):
    id: uuid.UUID
    name: str
    email: str
    created_at: datetime
    pending_email: str | None = Field(
        description="A new address waiting for its owner to follow the link sent to it."
    )


class AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(
        default=None,
        max_length=320,
        description="Changes once its owner follows the link sent there; the old address is told.",
    )


class AccountDeletion(BaseModel):
    password: str = Field(max_length=256, description="Your password, again.")
