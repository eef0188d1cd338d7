"""The tamper-evident audit trail (privacy policy §11: kept 7 years; security events).

Entries form one hash chain: each entry's ``hash`` is an HMAC-SHA256, keyed with the
server's secret key, over the previous entry's hash and a canonical encoding of its
own fields. Editing, deleting, reordering or inserting an entry breaks the chain at
that entry, and without the key nobody can forge a chain that verifies.

Two limits of any hash chain: removing entries from the *end* leaves a shorter chain
that still verifies (keep the head hash somewhere else to detect that), and so does
removing a prefix, which is exactly what the retention purge does: verification trusts
the lowest remaining entry's ``prev_hash`` as its anchor.

The database refuses UPDATE, DELETE and TRUNCATE on the table (triggers in migration
0002) unless ``cybergine.audit_maintenance`` is ``on`` in the transaction. That guards
against mistakes and bugs, not against a database superuser; the chain is what makes
tampering by such a person evident.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    CursorResult,
    Index,
    String,
    bindparam,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base
from cybergine.privacy import keys
from cybergine.privacy.retention import MAXIMUM_AGE, Retention

GENESIS_HASH = "0" * 64

# pg_advisory_xact_lock key that serialises writers of the chain ("cybgaudt").
CHAIN_LOCK_KEY = 0x6379626761756474

VERIFY_BATCH_SIZE = 1000
MAX_LIST_LIMIT = 1000

_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")

# The fields the hash covers, besides the previous hash. Changing this list (or their
# encoding) invalidates every existing chain.
_HASHED_FIELDS = (
    "seq",
    "at",
    "organisation_id",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "details",
)


class ActorType(enum.StrEnum):
    USER = "user"
    API_KEY = "api_key"
    SYSTEM = "system"
    WEBHOOK = "webhook"


@dataclass(frozen=True)
class Actor:
    """Who did it."""

    type: ActorType
    # User id, API key id, webhook source name.
    id: str | None = None
    # Human-readable: an email, a key prefix.
    label: str | None = None

    @classmethod
    def system(cls, name: str | None = None) -> Actor:
        return cls(ActorType.SYSTEM, name)

    @classmethod
    def user(cls, user_id: uuid.UUID | str, email: str | None = None) -> Actor:
        return cls(ActorType.USER, str(user_id), email)

    @classmethod
    def api_key(cls, key_id: uuid.UUID | str, prefix: str) -> Actor:
        return cls(ActorType.API_KEY, str(key_id), prefix)

    @classmethod
    def webhook(cls, source: str) -> Actor:
        return cls(ActorType.WEBHOOK, source)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __retention__ = Retention.AUDIT
    __table_args__ = (
        CheckConstraint("seq > 0", name="seq_positive"),
        CheckConstraint("prev_hash ~ '^[0-9a-f]{64}$'", name="prev_hash_hex"),
        CheckConstraint("hash ~ '^[0-9a-f]{64}$'", name="hash_hex"),
        # Leads with organisation_id for tenant lookups; seq serves list_events' order.
        Index("ix_audit_events_organisation_id_seq", "organisation_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    # Set by the writer rather than the database, so that it is part of the hash.
    at: Mapped[datetime] = mapped_column(index=True)
    # No foreign key on purpose: the trail outlives an erased organisation (7 years).
    organisation_id: Mapped[uuid.UUID | None]
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(200))
    actor_label: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(100))
    target_type: Mapped[str | None] = mapped_column(String(50))
    target_id: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    @property
    def actor(self) -> Actor:
        return Actor(ActorType(self.actor_type), self.actor_id, self.actor_label)


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    # Entries found intact (all of them when ok).
    checked: int
    # The first entry where the chain breaks; for a deleted entry, its missing seq.
    first_bad_seq: int | None = None
    reason: str | None = None


async def record(
    session: AsyncSession,
    *,
    action: str,
    actor: Actor,
    organisation_id: uuid.UUID | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append an entry in the caller's transaction; it commits (or not) with it.

    Takes a transaction-scoped advisory lock so the chain stays one sequence: every
    audited write waits here until the previous audited transaction commits or rolls
    back, so keep audited transactions short. Needs READ COMMITTED (the default): a
    snapshot older than the lock would not see the last entry, and the unique seq
    would refuse the insert.
    """
    _check(action=action, actor=actor, target_type=target_type, target_id=target_id)
    stored_details = await _as_stored(session, details)
    key = keys.current().secret_key

    await session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK_KEY)))
    last = (
        await session.execute(
            select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
        )
    ).first()
    seq, prev_hash = (last.seq + 1, last.hash) if last is not None else (1, GENESIS_HASH)

    values: dict[str, Any] = {
        "seq": seq,
        # Read after the lock, so entries' times follow their order on one clock.
        "at": datetime.now(UTC),
        "organisation_id": organisation_id,
        "actor_type": actor.type.value,
        "actor_id": actor.id,
        "actor_label": actor.label,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "details": stored_details,
    }
    event = AuditEvent(**values, prev_hash=prev_hash, hash=_digest(key, prev_hash, values))
    session.add(event)
    await session.flush()
    return event


async def verify_chain(session: AsyncSession, *, key: bytes | None = None) -> VerificationResult:
    """Recompute the chain in seq order and report the first entry that breaks it.

    Starts at the lowest remaining seq and trusts its ``prev_hash`` (the entries
    before it were purged), except that entry 1 must start from the genesis hash.
    One server-side cursor, so the rows come from one snapshot in batches.
    """
    key = key if key is not None else keys.current().secret_key
    table = AuditEvent.__table__
    columns = [table.c[name] for name in ("prev_hash", "hash", *_HASHED_FIELDS)]
    result = await session.stream(
        select(*columns).order_by(table.c.seq).execution_options(yield_per=VERIFY_BATCH_SIZE)
    )
    checked = 0
    previous: tuple[int, str] | None = None
    try:
        async for batch in result.partitions():
            for row in batch:
                values = row._mapping
                seq: int = values["seq"]
                broken = _link_problem(previous, seq, values["prev_hash"])
                if broken is None and not hmac.compare_digest(
                    _digest(key, values["prev_hash"], values), values["hash"]
                ):
                    broken = (seq, "content does not match its hash (edited, or forged)")
                if broken is not None:
                    return VerificationResult(False, checked, *broken)
                checked += 1
                previous = (seq, values["hash"])
    finally:
        await result.close()
    return VerificationResult(True, checked)


async def list_events(
    session: AsyncSession,
    *,
    organisation_id: uuid.UUID,
    limit: int = 100,
    before_seq: int | None = None,
) -> list[AuditEvent]:
    """An organisation's entries, newest first; pass the last seq seen as ``before_seq``
    for the next page."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}")
    query = select(AuditEvent).where(AuditEvent.organisation_id == organisation_id)
    if before_seq is not None:
        query = query.where(AuditEvent.seq < before_seq)
    result = await session.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit))
    return list(result)


async def purge_expired(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete entries past the retention period (policy §11); returns how many.

    Deletes only a prefix of the chain, so what remains still verifies: an old entry
    with a younger one before it (clocks of different hosts) waits for that one. The
    newest entry is always kept, so the chain continues from it rather than
    restarting at seq 1.
    """
    cutoff = (now or datetime.now(UTC)) - MAXIMUM_AGE[Retention.AUDIT]
    oldest_young = select(func.min(AuditEvent.seq)).where(AuditEvent.at >= cutoff).scalar_subquery()
    newest = select(func.max(AuditEvent.seq)).scalar_subquery()
    # LEAST ignores NULL: with nothing young, everything but the newest goes.
    statement = (
        delete(AuditEvent)
        .where(AuditEvent.seq < func.least(oldest_young, newest))
        .execution_options(synchronize_session=False)
    )
    await session.execute(text("SET LOCAL cybergine.audit_maintenance = 'on'"))
    result = cast("CursorResult[Any]", await session.execute(statement))
    # Off again at once: the rest of the caller's transaction gets no escape hatch.
    await session.execute(text("SET LOCAL cybergine.audit_maintenance = 'off'"))
    return result.rowcount


def _check(*, action: str, actor: Actor, target_type: str | None, target_id: str | None) -> None:
    if len(action) > 100 or not _ACTION.fullmatch(action):
        raise ValueError(f"audit action {action!r} is not like 'team.role.changed'")
    for name, value, limit in (
        ("actor id", actor.id, 200),
        ("actor label", actor.label, 320),
        ("target type", target_type, 50),
        ("target id", target_id, 200),
    ):
        if value is not None and len(value) > limit:
            raise ValueError(f"audit {name} is longer than {limit} characters")


async def _as_stored(session: AsyncSession, details: Mapping[str, Any] | None) -> dict[str, Any]:
    """``details`` as it will read back from JSONB, which the hash must be computed on.

    JSONB rewrites some values (1e20 reads back as an integer, -0.0 as 0.0, integer
    keys as strings), so a hash of the Python value could fail verification later.
    """
    if not details:
        return {}
    stored = await session.scalar(
        select(bindparam("details", dict(details), type_=JSONB).cast(JSONB))
    )
    assert isinstance(stored, dict)
    return stored


def _link_problem(
    previous: tuple[int, str] | None, seq: int, prev_hash: str
) -> tuple[int, str] | None:
    """Where and why ``seq`` does not follow ``previous`` (its seq and hash)."""
    if previous is None:
        if seq == 1 and prev_hash != GENESIS_HASH:
            return seq, "the first entry does not start from the genesis hash"
        return None
    previous_seq, previous_hash = previous
    if seq != previous_seq + 1:
        return previous_seq + 1, f"entry {previous_seq + 1} is missing"
    if prev_hash != previous_hash:
        return seq, f"prev_hash does not match entry {previous_seq}'s hash"
    return None


def _canonical(values: Mapping[Any, Any]) -> bytes:
    content = {name: values[name] for name in _HASHED_FIELDS}
    content["at"] = content["at"].astimezone(UTC).isoformat(timespec="microseconds")
    if content["organisation_id"] is not None:
        content["organisation_id"] = str(content["organisation_id"])
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


# Mapping[Any, Any]: a result row's mapping is keyed by name or column.
def _digest(key: bytes, prev_hash: str, values: Mapping[Any, Any]) -> str:
    message = prev_hash.encode("ascii") + _canonical(values)
    return hmac.new(key, message, hashlib.sha256).hexdigest()
