"""Throttles for what anyone may try without signing in (sign-in, password reset,
sign-up), that hold under concurrency.

An attempt is written and committed on a connection of its own *before* it is judged,
then counted by a later statement. Of N attempts racing, the k-th to commit counts at
least k rows, so no more than the limit are let through however they interleave.
(Counting and adding inside the request's own transaction let 17 of 40 concurrent wrong
passwords through a limit of 5: each saw the committed past, none the others in flight.)
An attempt turned away is deleted again, so knocking on a closed door does not keep it
closed longer. Keys are keyed hashes: enough to count, useless to anyone reading them.

This module commits on its own, unlike the services: that is the point of it.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import LoginAttempt
from cybergine.accounts.tokens import keyed_hash
from cybergine.db.engine import Database

# Longer than any window below.
ATTEMPTS_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class Limit:
    """At most ``maximum`` counted attempts per ``window`` for one value of ``purpose``
    (one address, one IP address)."""

    purpose: str
    maximum: int
    window: timedelta

    def __post_init__(self) -> None:
        assert self.window <= ATTEMPTS_KEPT, "attempts are pruned before the window ends"


@dataclass(frozen=True)
class Admission:
    attempt_ids: tuple[uuid.UUID, ...]
    refused_by: Limit | None  # None: the attempt may go on


def address_block(ip: str) -> str:
    """What a per-IP limit counts: the address, or for IPv6 its /64, which one home or
    server is given whole (counting single IPv6 addresses, anyone could take turns)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


async def admit(database: Database, *checks: tuple[Limit, str]) -> Admission:
    """Records one attempt against each ``(limit, value)`` and says whether it may go on.

    The attempt counts until ``forgive`` is called for it (a correct password)."""
    keyed = [(limit, keyed_hash(limit.purpose, value)) for limit, value in checks]
    async with database.autocommit() as session:
        inserted = await session.execute(
            insert(LoginAttempt)
            .values([{"key_hash": key, "succeeded": False} for _, key in keyed])
            .returning(LoginAttempt.id)
        )
        ids = tuple(inserted.scalars())
        counted = select(
            *(
                select(func.count())
                .select_from(LoginAttempt)
                .where(
                    LoginAttempt.key_hash == key,
                    LoginAttempt.succeeded.is_(False),
                    LoginAttempt.created_at > func.now() - limit.window,
                )
                .scalar_subquery()
                for limit, key in keyed
            )
        )
        counts = [int(count) for count in (await session.execute(counted)).one()]
        refused_by = next(
            (
                limit
                for (limit, _), count in zip(keyed, counts, strict=True)
                if count > limit.maximum
            ),
            None,
        )
        if refused_by is not None:
            await session.execute(delete(LoginAttempt).where(LoginAttempt.id.in_(ids)))
    return Admission(attempt_ids=ids, refused_by=refused_by)


async def forgive(session: AsyncSession, admission: Admission) -> None:
    """The attempt succeeded (the right password): it no longer counts. In the caller's
    transaction, so it is forgiven only if the sign-in commits."""
    await session.execute(
        update(LoginAttempt)
        .where(LoginAttempt.id.in_(admission.attempt_ids))
        .values(succeeded=True)
    )


async def forget(session: AsyncSession, *counted: tuple[Limit, str]) -> None:
    """Delete the attempts counted against these values (a person being erased): their
    keyed hashes are derived from the person's address."""
    hashes = [keyed_hash(limit.purpose, value) for limit, value in counted]
    await session.execute(delete(LoginAttempt).where(LoginAttempt.key_hash.in_(hashes)))


async def prune_attempts(session: AsyncSession, *, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    await session.execute(delete(LoginAttempt).where(LoginAttempt.created_at < now - ATTEMPTS_KEPT))
