"""The tamper-evident audit trail (privacy policy §11: kept 7 years; security events).

Entries form one hash chain: each entry's ``hash`` is an HMAC-SHA256, keyed with the
server's secret key, over the previous entry's hash and a canonical encoding of its
own fields. Editing, deleting, reordering or inserting an entry breaks the chain at
that entry, and without the key nobody can forge a chain that verifies.

A limit of any hash chain: removing entries from the *end* leaves a shorter chain that
still verifies (keep the head hash somewhere else to detect that). Removing a prefix is
what the retention purge does, so it leaves a checkpoint: before deleting, it appends an
entry (``CHECKPOINT_ACTION``) naming the first entry it keeps and that entry's
``prev_hash``. Verification accepts a chain that does not start at entry 1 only when a
checkpoint inside the chain (so under the key) names exactly where it starts; a prefix
removed any other way fails.

The chain hashes who acted by type and id only; the words for them (an e-mail address)
live in ``audit_actor_labels`` (``privacy.audit_labels``), which erasing a person
empties, so the trail names no one afterwards and still verifies. Entries written before
that (hash format 1) hashed the label as well: ``seal_legacy_entries`` checks such an
entry, then replaces its label by a seal, an HMAC over the rest of its content and its
hash, which verification checks instead.

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
    Select,
    SmallInteger,
    String,
    Table,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base
from cybergine.privacy import audit_labels, keys
from cybergine.privacy.audit_labels import AuditActorLabel
from cybergine.privacy.retention import MAXIMUM_AGE, Retention

GENESIS_HASH = "0" * 64

# The entry the purge appends before removing a prefix of the chain (see above).
CHECKPOINT_ACTION = "audit.trail.purged"

# pg_advisory_xact_lock key that serialises writers of the chain ("cybgaudt").
CHAIN_LOCK_KEY = 0x6379626761756474

VERIFY_BATCH_SIZE = 1000
MAX_LIST_LIMIT = 1000

_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")

# The fields the hash covers, besides the previous hash, by the format an entry was
# written in (``audit_events.hash_format``). Changing a list (or their encoding)
# invalidates every chain written in it: a change is a new format.
_HASHED_FIELDS = (
    "seq",
    "at",
    "organisation_id",
    "actor_type",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "details",
)
# Until migration 0016 the actor's label (an e-mail address) was hashed too.
LEGACY_FORMAT = 1
HASH_FORMAT = 2
_FIELDS_BY_FORMAT = {LEGACY_FORMAT: (*_HASHED_FIELDS, "actor_label"), HASH_FORMAT: _HASHED_FIELDS}
_SEAL_PREFIX = b"cybergine audit seal v1\x00"
SEAL_BATCH_SIZE = 1000


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
    # Human-readable: an email, a key prefix. Kept in ``audit_actor_labels``, not in the
    # entry, so it can be erased.
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
        CheckConstraint("hash_format IN (1, 2)", name="hash_format_known"),
        CheckConstraint("seal ~ '^[0-9a-f]{64}$'", name="seal_hex"),
        # Only format 1 hashed a label; a seal replaces it.
        CheckConstraint(
            "(hash_format = 1 OR (actor_label IS NULL AND seal IS NULL))"
            " AND (seal IS NULL OR actor_label IS NULL)",
            name="label_only_in_legacy_entries",
        ),
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
    # Format 1 entries only, until sealed; the label of anyone's entry is in
    # ``audit_actor_labels``.
    actor_label: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(100))
    target_type: Mapped[str | None] = mapped_column(String(50))
    target_id: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash_format: Mapped[int] = mapped_column(SmallInteger)
    # A format 1 entry whose label was removed: HMAC over its hash and content
    # (``_seal_digest``), which verification checks instead of the hash.
    seal: Mapped[str | None] = mapped_column(String(64), default=None)

    @property
    def actor(self) -> Actor:
        return Actor(ActorType(self.actor_type), self.actor_id)


@dataclass(frozen=True)
class ListedEvent:
    """An entry as people read it: with its actor's label, while there is one."""

    seq: int
    at: datetime
    organisation_id: uuid.UUID | None
    actor_type: str
    actor_id: str | None
    actor_label: str | None
    action: str
    target_type: str | None
    target_id: str | None
    details: dict[str, Any]


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
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "details": stored_details,
    }
    event = AuditEvent(
        **values,
        prev_hash=prev_hash,
        hash=_digest(key, prev_hash, values, HASH_FORMAT),
        hash_format=HASH_FORMAT,
    )
    session.add(event)
    await session.flush()
    if actor.id is not None and actor.label is not None:
        await audit_labels.remember(
            session, actor_type=actor.type.value, actor_id=actor.id, label=actor.label
        )
    return event


async def verify_chain(session: AsyncSession, *, key: bytes | None = None) -> VerificationResult:
    """Recompute the chain in seq order and report the first entry that breaks it.

    Entry 1 must start from the genesis hash; a chain that starts later (its prefix
    was purged) must hold the purge's checkpoint naming its first entry and that
    entry's ``prev_hash``. One server-side cursor, so the rows come from one snapshot
    in batches.
    """
    key = key if key is not None else keys.current().secret_key
    table = AuditEvent.__table__
    names = ("prev_hash", "hash", "hash_format", "seal", *_FIELDS_BY_FORMAT[LEGACY_FORMAT])
    columns = [table.c[name] for name in names]
    result = await session.stream(
        select(*columns).order_by(table.c.seq).execution_options(yield_per=VERIFY_BATCH_SIZE)
    )
    checked = 0
    previous: tuple[int, str] | None = None
    # Where the chain starts when its prefix was purged, until a checkpoint vouches for it.
    unanchored: dict[str, Any] | None = None
    try:
        async for batch in result.partitions():
            for row in batch:
                values = row._mapping
                seq: int = values["seq"]
                broken = _link_problem(previous, seq, values["prev_hash"])
                if broken is None and not _content_intact(key, values):
                    broken = (seq, "content does not match its hash (edited, or forged)")
                if broken is not None:
                    return VerificationResult(False, checked, *broken)
                if previous is None and seq != 1:
                    unanchored = {"first_kept_seq": seq, "anchor_hash": values["prev_hash"]}
                if (
                    unanchored is not None
                    and values["action"] == CHECKPOINT_ACTION
                    and {name: values["details"].get(name) for name in unanchored} == unanchored
                ):
                    unanchored = None
                checked += 1
                previous = (seq, values["hash"])
    finally:
        await result.close()
    if unanchored is not None:
        first: int = unanchored["first_kept_seq"]
        return VerificationResult(
            False,
            checked,
            first - 1,
            f"entries before {first} were removed without a purge checkpoint",
        )
    return VerificationResult(True, checked)


async def list_events(
    session: AsyncSession,
    *,
    organisation_id: uuid.UUID,
    limit: int = 100,
    before_seq: int | None = None,
) -> list[ListedEvent]:
    """An organisation's entries, newest first; pass the last seq seen as ``before_seq``
    for the next page."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}")
    query = _listed().where(AuditEvent.organisation_id == organisation_id)
    if before_seq is not None:
        query = query.where(AuditEvent.seq < before_seq)
    result = await session.execute(query.order_by(AuditEvent.seq.desc()).limit(limit))
    return [_listed_event(event, label) for event, label in result.all()]


async def events_by_actor(session: AsyncSession, actor: Actor) -> list[ListedEvent]:
    """What one actor did, in every organisation, oldest first (a person's export)."""
    result = await session.execute(
        _listed()
        .where(AuditEvent.actor_type == actor.type.value, AuditEvent.actor_id == actor.id)
        .order_by(AuditEvent.seq)
    )
    return [_listed_event(event, label) for event, label in result.all()]


async def forget_actor(session: AsyncSession, actor: Actor) -> int:
    """Erase who ``actor`` was from the trail: their label, and the labels their format 1
    entries hashed (sealed first). Their entries stay, with their id; the chain still
    verifies. Returns how many entries lost a label."""
    assert actor.id is not None, "an actor without an id has no label to forget"
    await audit_labels.forget(session, actor_type=actor.type.value, actor_id=actor.id)
    stripped = 0
    while batch := await _seal_batch(session, actor=actor):
        stripped += batch
    return stripped


async def seal_legacy_entries(session: AsyncSession, *, limit: int = SEAL_BATCH_SIZE) -> int:
    """Seal up to ``limit`` format 1 entries that still hold a label (oldest first), so
    that no e-mail address stays in the chain; returns how many. An entry whose content
    does not match its hash is left as it is, evidence of what happened to it."""
    return await _seal_batch(session, actor=None, limit=limit)


async def _seal_batch(
    session: AsyncSession, *, actor: Actor | None, limit: int = SEAL_BATCH_SIZE
) -> int:
    """Seal intact format 1 entries (of ``actor``, or anyone's) and remove their labels.
    For one actor's erasure a broken entry loses its label too, unsealed: it stays
    broken where it was, and the person's address goes."""
    table = cast("Table", AuditEvent.__table__)
    names = ("prev_hash", "hash", *_FIELDS_BY_FORMAT[LEGACY_FORMAT])
    query = (
        select(*(table.c[name] for name in names))
        .where(table.c.hash_format == LEGACY_FORMAT, table.c.actor_label.is_not(None))
        .order_by(table.c.seq)
        .limit(limit)
        .with_for_update(skip_locked=actor is None)
    )
    if actor is not None:
        query = query.where(table.c.actor_type == actor.type.value, table.c.actor_id == actor.id)
    key = keys.current().secret_key
    seals: list[dict[str, Any]] = []
    for row in (await session.execute(query)).all():
        values = row._mapping
        intact = hmac.compare_digest(
            _digest(key, values["prev_hash"], values, LEGACY_FORMAT), values["hash"]
        )
        if intact or actor is not None:
            seal = _seal_digest(key, values) if intact else None
            seals.append({"entry_seq": values["seq"], "new_seal": seal})
    if not seals:
        return 0
    await session.execute(text("SET LOCAL cybergine.audit_maintenance = 'on'"))
    await session.execute(
        update(table)
        .where(table.c.seq == bindparam("entry_seq"))
        .values(seal=bindparam("new_seal"), actor_label=None),
        seals,
    )
    # Off again at once: the rest of the caller's transaction gets no escape hatch.
    await session.execute(text("SET LOCAL cybergine.audit_maintenance = 'off'"))
    return len(seals)


def _listed() -> Select[AuditEvent, str]:
    return select(AuditEvent, AuditActorLabel.label).outerjoin(
        AuditActorLabel, audit_labels.joins(AuditEvent.actor_type, AuditEvent.actor_id)
    )


def _listed_event(event: AuditEvent, label: str | None) -> ListedEvent:
    return ListedEvent(
        seq=event.seq,
        at=event.at,
        organisation_id=event.organisation_id,
        actor_type=event.actor_type,
        actor_id=event.actor_id,
        # An unsealed format 1 entry still says who it was itself.
        actor_label=label if label is not None else event.actor_label,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        details=event.details,
    )


async def purge_expired(
    session: AsyncSession, *, now: datetime | None = None, limit: int | None = None
) -> int:
    """Delete entries past the retention period (policy §11), at most ``limit`` of
    them; returns how many.

    Deletes only a prefix of the chain, so what remains still verifies: an old entry
    with a younger one before it (clocks of different hosts) waits for that one. The
    newest entry is always kept, so the chain continues from it rather than
    restarting at seq 1. The checkpoint verification needs is appended first, in the
    same transaction, under the chain's lock.
    """
    cutoff = (now or datetime.now(UTC)) - MAXIMUM_AGE[Retention.AUDIT]
    await session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK_KEY)))
    oldest_young = select(func.min(AuditEvent.seq)).where(AuditEvent.at >= cutoff).scalar_subquery()
    newest = select(func.max(AuditEvent.seq)).scalar_subquery()
    # LEAST ignores NULL: with nothing young, everything but the newest goes.
    bounds = (
        await session.execute(
            select(func.min(AuditEvent.seq).label("lowest"), func.least(oldest_young, newest))
        )
    ).one()
    lowest: int | None = bounds[0]
    first_kept: int = bounds[1]
    if lowest is None or first_kept <= lowest:
        return 0
    if limit is not None:
        first_kept = min(first_kept, lowest + limit)
    anchor_hash = await session.scalar(
        select(AuditEvent.prev_hash).where(AuditEvent.seq == first_kept)
    )
    await record(
        session,
        action=CHECKPOINT_ACTION,
        actor=Actor.system("retention"),
        details={
            "first_kept_seq": first_kept,
            "anchor_hash": anchor_hash,
            "purged": first_kept - lowest,
            "before": cutoff.isoformat(),
        },
    )
    statement = (
        delete(AuditEvent)
        .where(AuditEvent.seq < first_kept)
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


def _content_intact(key: bytes, values: Mapping[Any, Any]) -> bool:
    """Whether an entry's content is what its hash (or, sealed, its seal) says."""
    if values["hash_format"] == HASH_FORMAT:
        expected = _digest(key, values["prev_hash"], values, HASH_FORMAT)
        stored = values["hash"]
    elif values["hash_format"] == LEGACY_FORMAT and values["seal"] is not None:
        expected, stored = _seal_digest(key, values), values["seal"]
    elif values["hash_format"] == LEGACY_FORMAT:
        expected = _digest(key, values["prev_hash"], values, LEGACY_FORMAT)
        stored = values["hash"]
    else:
        return False
    return hmac.compare_digest(expected, stored)


def _canonical(values: Mapping[Any, Any], hash_format: int) -> bytes:
    content = {name: values[name] for name in _FIELDS_BY_FORMAT[hash_format]}
    content["at"] = content["at"].astimezone(UTC).isoformat(timespec="microseconds")
    if content["organisation_id"] is not None:
        content["organisation_id"] = str(content["organisation_id"])
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


# Mapping[Any, Any]: a result row's mapping is keyed by name or column.
def _digest(key: bytes, prev_hash: str, values: Mapping[Any, Any], hash_format: int) -> str:
    message = prev_hash.encode("ascii") + _canonical(values, hash_format)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _seal_digest(key: bytes, values: Mapping[Any, Any]) -> str:
    """A format 1 entry without its label: its prev_hash and hash (so the chain's links
    stay bound to it) and the rest of its content, as format 2 hashes it. Written only
    after the entry's own hash was checked (``_seal_batch``)."""
    message = (
        _SEAL_PREFIX
        + values["prev_hash"].encode("ascii")
        + values["hash"].encode("ascii")
        + _canonical(values, HASH_FORMAT)
    )
    return hmac.new(key, message, hashlib.sha256).hexdigest()
