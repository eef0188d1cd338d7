"""Keyed hashes that replace an erased customer's identifiers (policy §14).

A channel's id for a message (Meta's wamid is base64 of a structure holding the phone
number; web chat's holds the visitor id) is replaced by an HMAC of it under the server's
secret key: without the key nobody can tell whose it was, and a status webhook that
arrives later, carrying the same wamid, is still matched by hashing what it carries.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.conversations.models import ERASED_PREFIX, Channel, Customer
from cybergine.privacy import keys

_PURPOSE = b"erased-external-id\x00"


def erased_external_id(external_id: str) -> str:
    """The keyed hash that stands for ``external_id`` once its customer is erased."""
    if external_id.startswith(ERASED_PREFIX):
        return external_id  # already one
    digest = hmac.new(
        keys.current().secret_key, _PURPOSE + external_id.encode(), hashlib.sha256
    ).hexdigest()
    return f"{ERASED_PREFIX}{digest}"


def matching_external_ids(external_id: str) -> tuple[str, str]:
    """What a message's stored external id may be when the channel names it by
    ``external_id``: the id itself, or its keyed hash if its customer was erased."""
    return external_id, erased_external_id(external_id)


async def erased_on_channel(
    session: AsyncSession, organisation_id: uuid.UUID, channel: Channel, external_id: str
) -> bool:
    """Whether the customer ``external_id`` names on ``channel`` was erased and their row
    keeps the keyed hash of it (a web visitor's: their token is refused from then on)."""
    marker = erased_external_id(external_id)
    found = await session.scalar(
        select(Customer.id).where(
            Customer.organisation_id == organisation_id,
            Customer.channel == channel,
            Customer.external_id == marker,
        )
    )
    return found is not None
