"""API keys: shown once, stored as a hash with a visible prefix, limited to a role."""

from __future__ import annotations

import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import ApiKey, Organisation, OrganisationStatus, Role
from cybergine.accounts.permissions import at_least
from cybergine.accounts.principal import Principal
from cybergine.accounts.tokens import new_token, token_hash
from cybergine.db.tenancy import TenantScope
from cybergine.errors import Forbidden, InvalidInput
from cybergine.privacy import audit

KEY_SCHEME = "cg"
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
# last_used_at is for people ("is this key still used?"), minute precision is plenty
# and saves a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    secret: str  # the whole key; never stored, shown once


def _split(presented: str) -> tuple[str, str] | None:
    parts = presented.split("_", 2)  # the secret part may itself contain "_"
    if len(parts) != 3 or parts[0] != KEY_SCHEME or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


async def create_api_key(
    scope: TenantScope, caller: Principal | None, *, name: str, role: Role
) -> CreatedKey:
    """``caller`` is None only for the command line (`cybergine org create`)."""
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise InvalidInput("Give the key a name of 1 to 100 characters.", field="name")
    if caller is not None and not at_least(caller.role, role):
        raise Forbidden("You cannot create a key with a role above your own.")
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(10))
    secret = f"{KEY_SCHEME}_{prefix}_{new_token()}"
    api_key = scope.add(
        ApiKey(
            name=name,
            prefix=prefix,
            key_hash=token_hash(secret),
            role=role,
            created_by_user_id=caller.user_id if caller else None,
        )
    )
    await scope.session.flush()
    await audit.record(
        scope.session,
        action="api_key.created",
        actor=caller.actor if caller else audit.Actor.system(),
        organisation_id=scope.organisation_id,
        target_type="api_key",
        target_id=str(api_key.id),
        details={"name": name, "role": role.value, "prefix": prefix},
    )
    return CreatedKey(api_key=api_key, secret=secret)


async def list_api_keys(scope: TenantScope) -> list[ApiKey]:
    result = await scope.session.execute(scope.select(ApiKey).order_by(ApiKey.id.desc()))
    return list(result.scalars())


async def revoke_api_key(scope: TenantScope, caller: Principal, api_key_id: uuid.UUID) -> ApiKey:
    api_key = await scope.get(ApiKey, api_key_id, for_update=True, what="API key")
    if not at_least(caller.role, api_key.role):
        raise Forbidden("You cannot revoke a key with a role above your own.")
    if api_key.revoked_at is None:
        api_key.revoked_at = datetime.now(UTC)
        await audit.record(
            scope.session,
            action="api_key.revoked",
            actor=caller.actor,
            organisation_id=scope.organisation_id,
            target_type="api_key",
            target_id=str(api_key.id),
            details={"prefix": api_key.prefix},
        )
    return api_key


async def authenticate(session: AsyncSession, presented: str) -> Principal | None:
    """The principal of a presented key, or None for any key that is not live."""
    if _split(presented) is None:
        return None
    result = await session.execute(
        select(ApiKey, Organisation.status)
        .join(Organisation, Organisation.id == ApiKey.organisation_id)
        .where(ApiKey.key_hash == token_hash(presented))
    )
    row = result.one_or_none()
    if row is None:
        return None
    api_key, organisation_status = row
    # A key of an organisation whose shop uninstalled the app is still its key: the
    # request is then refused as hidden (403, ``grace.ShopUninstalled``), not as unknown.
    if api_key.revoked_at is not None or organisation_status is OrganisationStatus.PENDING_DELETION:
        return None
    now = datetime.now(UTC)
    if api_key.last_used_at is None or api_key.last_used_at + LAST_USED_RESOLUTION <= now:
        api_key.last_used_at = now
    return Principal(
        organisation_id=api_key.organisation_id,
        role=api_key.role,
        api_key_id=api_key.id,
        api_key_prefix=api_key.prefix,
    )
