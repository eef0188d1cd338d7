"""Who is calling: a user through a browser session, or an API key. Either way the caller
acts inside exactly one organisation with one role."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from cybergine.accounts.models import Role
from cybergine.accounts.permissions import Permission, allows
from cybergine.privacy.audit import Actor


@dataclass(frozen=True)
class Principal:
    organisation_id: uuid.UUID
    role: Role
    user_id: uuid.UUID | None = None
    email: str | None = None
    api_key_id: uuid.UUID | None = None
    api_key_prefix: str | None = None

    @property
    def actor(self) -> Actor:
        if self.api_key_id is not None:
            return Actor.api_key(str(self.api_key_id), self.api_key_prefix or "")
        return Actor.user(str(self.user_id), email=self.email)

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)
