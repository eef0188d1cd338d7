"""Actor labels live apart from the audit chain: erasing a person leaves the chain
verifiable and their address nowhere in the audit tables, including in entries written
before migration 0016, whose hash (format 1) covered the label."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from cybergine.db import migrate
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from cybergine.privacy import audit
from cybergine.privacy.audit import Actor
from cybergine.privacy.keys import ServerKeys

GENESIS = "0" * 64
ALICE = str(uuid7())
BOB = str(uuid7())
ORGANISATION = uuid7()
# (actor id, label, action): what the trail held before labels left the chain.
LEGACY = [
    (ALICE, "alice@example.com", "auth.login.succeeded"),
    (BOB, "bob@example.com", "auth.login.succeeded"),
    (ALICE, "alice@example.com", "team.role.changed"),
    (None, None, "auth.login.failed"),
]


def format_1_hash(key: bytes, prev_hash: str, content: dict[str, Any]) -> str:
    """The construction before migration 0016, written out independently: the label is
    hashed with the rest."""
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, prev_hash.encode() + encoded.encode(), hashlib.sha256).hexdigest()


async def write_legacy_chain(database: Database, key: bytes) -> None:
    """Entries as the code before 0016 wrote them (SQL: the models are newer)."""
    prev_hash = GENESIS
    async with database.transaction() as session:
        for seq, (actor_id, label, action) in enumerate(LEGACY, start=1):
            at = datetime.now(UTC)
            content = {
                "seq": seq,
                "at": at.isoformat(timespec="microseconds"),
                "organisation_id": str(ORGANISATION),
                "actor_type": "user",
                "actor_id": actor_id,
                "actor_label": label,
                "action": action,
                "target_type": None,
                "target_id": None,
                "details": {"n": seq},
            }
            digest = format_1_hash(key, prev_hash, content)
            await session.execute(
                text(
                    "INSERT INTO audit_events (id, seq, at, organisation_id, actor_type,"
                    " actor_id, actor_label, action, details, prev_hash, hash) VALUES"
                    " (:id, :seq, :at, :organisation_id, 'user', :actor_id, :label, :action,"
                    " CAST(:details AS jsonb), :prev_hash, :hash)"
                ),
                {
                    "id": uuid.uuid4(),
                    "seq": seq,
                    "at": at,
                    "organisation_id": ORGANISATION,
                    "actor_id": actor_id,
                    "label": label,
                    "action": action,
                    "details": json.dumps({"n": seq}),
                    "prev_hash": prev_hash,
                    "hash": digest,
                },
            )
            prev_hash = digest


async def audit_tables_text(database: Database) -> str:
    async with database.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT row_to_json(a)::text FROM audit_events a UNION ALL"
                " SELECT row_to_json(l)::text FROM audit_actor_labels l"
            )
        )
        return "\n".join(row for (row,) in rows)


async def verify(database: Database) -> audit.VerificationResult:
    async with database.transaction() as session:
        return await audit.verify_chain(session)


async def labels_listed(database: Database) -> list[str | None]:
    async with database.transaction() as session:
        listed = await audit.list_events(session, organisation_id=ORGANISATION)
    return [event.actor_label for event in sorted(listed, key=lambda e: e.seq)]


async def tamper(database: Database, statement: str) -> None:
    async with database.transaction() as session:
        await session.execute(text("SET LOCAL cybergine.audit_maintenance = 'on'"))
        await session.execute(text(statement))


async def seal_all(database: Database) -> int:
    async with database.transaction() as session:
        return await audit.seal_legacy_entries(session)


async def forget(database: Database, actor_id: str) -> int:
    async with database.transaction() as session:
        return await audit.forget_actor(session, Actor.user(actor_id))


@pytest.fixture
async def migrated_from_0015(empty_database_url: str, server_keys: ServerKeys) -> Any:
    """A trail written before 0016, then the migration."""
    migrate.upgrade(empty_database_url, "0015")
    database = Database(empty_database_url, pool_size=2)
    try:
        await write_legacy_chain(database, server_keys.secret_key)
        migrate.upgrade(empty_database_url)
        yield database
    finally:
        await database.dispose()


async def test_a_trail_from_before_the_migration_still_verifies_and_loses_its_labels(
    migrated_from_0015: Database,
) -> None:
    database = migrated_from_0015
    assert await verify(database) == audit.VerificationResult(ok=True, checked=4)
    expected = ["alice@example.com", "bob@example.com", "alice@example.com", None]
    assert await labels_listed(database) == expected

    # New entries hash no label; the chain goes on from the old ones.
    async with database.transaction() as session:
        await audit.record(
            session,
            action="account.profile.changed",
            actor=Actor.user(ALICE, email="alice@example.com"),
            organisation_id=ORGANISATION,
        )
    assert await verify(database) == audit.VerificationResult(ok=True, checked=5)

    # The application seals the old entries (it holds the key; the migration did not).
    assert await seal_all(database) == 3
    assert await seal_all(database) == 0
    assert await verify(database) == audit.VerificationResult(ok=True, checked=5)
    async with database.transaction() as session:
        in_entries = await session.scalar(
            text("SELECT count(*) FROM audit_events WHERE actor_label IS NOT NULL")
        )
    assert in_entries == 0
    assert await labels_listed(database) == [*expected, "alice@example.com"]

    await forget(database, ALICE)
    assert await verify(database) == audit.VerificationResult(ok=True, checked=5)
    trail = await audit_tables_text(database)
    assert "alice@example.com" not in trail
    assert "bob@example.com" in trail  # only the erased person goes
    assert await labels_listed(database) == [None, "bob@example.com", None, None, None]


async def test_erasing_someone_strips_their_unsealed_entries_too(
    migrated_from_0015: Database,
) -> None:
    database = migrated_from_0015
    assert await forget(database, BOB) == 1
    assert await verify(database) == audit.VerificationResult(ok=True, checked=4)
    assert "bob@example.com" not in await audit_tables_text(database)
    assert "alice@example.com" in await audit_tables_text(database)


@pytest.mark.parametrize(
    ("statement", "bad_seq"),
    [
        ("UPDATE audit_events SET details = '{\"n\": 9}' WHERE seq = 2", 2),
        ("UPDATE audit_events SET actor_id = 'mallory' WHERE seq = 3", 3),
        ("UPDATE audit_events SET seal = repeat('a', 64) WHERE seq = 1", 1),
        ("UPDATE audit_events SET hash_format = 2, seal = NULL WHERE seq = 2", 2),
    ],
    ids=["details", "actor", "seal", "format"],
)
async def test_a_sealed_entry_edited_is_found(
    migrated_from_0015: Database, statement: str, bad_seq: int
) -> None:
    database = migrated_from_0015
    await seal_all(database)
    await tamper(database, statement)
    result = await verify(database)
    assert (result.ok, result.first_bad_seq) == (False, bad_seq)


async def test_a_broken_legacy_entry_is_not_sealed_over(
    migrated_from_0015: Database,
) -> None:
    """Sealing checks each entry first: an edited one keeps failing where it was edited,
    rather than being vouched for by a fresh seal."""
    database = migrated_from_0015
    await tamper(database, "UPDATE audit_events SET details = '{\"n\": 9}' WHERE seq = 3")
    assert await seal_all(database) == 2
    assert (await verify(database)).first_bad_seq == 3
    # Erasure removes the address from it all the same; it stays broken.
    await forget(database, ALICE)
    assert "alice@example.com" not in await audit_tables_text(database)
    result = await verify(database)
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_the_app_seals_legacy_entries_by_itself() -> None:
    from cybergine.jobs import APP

    periodic = {name for name, _ in APP.periodic_registry.periodic_tasks}
    assert "privacy:seal_legacy_audit_entries" in periodic
