"""The audit trail: one gapless hash chain, append-only in the database, and every kind
of tampering found at the entry where it happened."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from cybergine.privacy import audit
from cybergine.privacy.audit import Actor, ActorType, AuditEvent
from cybergine.privacy.keys import ServerKeys
from cybergine.privacy.retention import MAXIMUM_AGE, Retention

GENESIS = "0" * 64
OTHER_KEY = b"not-the-server-key-" + b"y" * 32


def expected_hash(row: Any, key: bytes, *, hash_format: int = 2) -> str:
    """The documented construction, written out independently of the module. Format 1
    (entries written before migration 0016) hashed the actor's label as well."""
    content = {
        "seq": row.seq,
        "at": row.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "organisation_id": None if row.organisation_id is None else str(row.organisation_id),
        "actor_type": row.actor_type,
        "actor_id": row.actor_id,
        **({"actor_label": row.actor_label} if hash_format == 1 else {}),
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "details": row.details,
    }
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    message = row.prev_hash.encode() + encoded.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


async def record_many(database: Database, count: int, **fields: Any) -> None:
    for number in range(count):
        async with database.transaction() as session:
            await audit.record(
                session,
                action="test.event.recorded",
                actor=Actor.system("tests"),
                details={"n": number},
                **fields,
            )


async def rows(database: Database) -> list[AuditEvent]:
    async with database.transaction() as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


async def verify(database: Database, key: bytes | None = None) -> audit.VerificationResult:
    async with database.transaction() as session:
        return await audit.verify_chain(session, key=key)


async def tamper(database: Database, *statements: str) -> None:
    async with database.transaction() as session:
        await session.execute(text("SET LOCAL cybergine.audit_maintenance = 'on'"))
        for statement in statements:
            await session.execute(text(statement))


async def test_record_builds_a_chain_from_genesis(
    database: Database, server_keys: ServerKeys
) -> None:
    organisation_id = uuid7()
    user_id = uuid7()
    async with database.transaction() as session:
        first = await audit.record(
            session,
            action="auth.login.succeeded",
            actor=Actor.user(user_id, email="zoë@example.com"),
            organisation_id=organisation_id,
        )
        assert first.seq == 1
        await audit.record(
            session,
            action="team.role.changed",
            actor=Actor.user(user_id, email="zoë@example.com"),
            organisation_id=organisation_id,
            target_type="user",
            target_id=str(uuid7()),
            details={"from": "agent", "to": "admin", "note": "naïve ☃", "list": [1, None]},
        )
    async with database.transaction() as session:
        await audit.record(session, action="webhook.signature.invalid", actor=Actor.webhook("meta"))

    stored = await rows(database)
    assert [row.seq for row in stored] == [1, 2, 3]
    assert stored[0].prev_hash == GENESIS
    for previous, row in itertools.pairwise(stored):
        assert row.prev_hash == previous.hash
    for row in stored:
        assert row.hash == expected_hash(row, server_keys.secret_key)
    # Who acted is hashed by id; the label lives apart, erasable (audit_actor_labels).
    assert stored[0].actor == Actor(ActorType.USER, str(user_id))
    assert stored[0].actor_label is None
    async with database.transaction() as session:
        labels = await audit.list_events(session, organisation_id=organisation_id)
    assert [event.actor_label for event in labels] == ["zoë@example.com"] * 2
    assert stored[1].details["to"] == "admin"
    assert stored[2].organisation_id is None
    assert stored[2].actor == Actor(ActorType.WEBHOOK, "meta")
    assert await verify(database) == audit.VerificationResult(ok=True, checked=3)


async def test_actor_constructors() -> None:
    key_id = uuid7()
    assert Actor.system() == Actor(ActorType.SYSTEM)
    assert Actor.user("u1") == Actor(ActorType.USER, "u1", None)
    assert Actor.api_key(key_id, "cyb_ab12") == Actor(ActorType.API_KEY, str(key_id), "cyb_ab12")
    assert Actor.webhook("shopify") == Actor(ActorType.WEBHOOK, "shopify")


async def test_details_are_hashed_as_jsonb_returns_them(
    database: Database, server_keys: ServerKeys
) -> None:
    # Values JSONB does not return as given: a hash of the Python value would not verify.
    details = {"big": 1e20, "negative_zero": -0.0, 7: "integer key", "tuple": (1, 2.5)}
    async with database.transaction() as session:
        event = await audit.record(
            session, action="test.details.odd", actor=Actor.system(), details=details
        )
    assert event.details == {
        "big": 100000000000000000000,
        "negative_zero": 0.0,
        "7": "integer key",
        "tuple": [1, 2.5],
    }
    (row,) = await rows(database)
    assert row.hash == expected_hash(row, server_keys.secret_key)
    assert (await verify(database)).ok


async def test_fifty_concurrent_writers_make_one_gapless_chain(database: Database) -> None:
    async def writer(number: int) -> None:
        async with database.transaction() as session:
            await audit.record(
                session,
                action="test.concurrent.write",
                actor=Actor.system(f"writer-{number}"),
                details={"writer": number},
            )
            # Hold the transaction open a little so writers really overlap.
            await asyncio.sleep(0.001)

    await asyncio.gather(*(writer(number) for number in range(50)))

    stored = await rows(database)
    assert [row.seq for row in stored] == list(range(1, 51))
    assert sorted(row.details["writer"] for row in stored) == list(range(50))
    assert await verify(database) == audit.VerificationResult(ok=True, checked=50)


async def test_a_rolled_back_entry_leaves_no_trace_and_no_gap(database: Database) -> None:
    await record_many(database, 1)

    class Abort(Exception):
        pass

    async def record_then_fail() -> None:
        async with database.transaction() as session:
            await audit.record(session, action="test.rolled.back", actor=Actor.system())
            raise Abort

    with pytest.raises(Abort):
        await record_then_fail()

    await record_many(database, 1)
    stored = await rows(database)
    assert [row.seq for row in stored] == [1, 2]
    assert all(row.action != "test.rolled.back" for row in stored)
    assert (await verify(database)).ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET details = '{\"n\": 99}' WHERE seq = 1",
        "UPDATE audit_events SET action = 'test.nothing' WHERE false",
        "DELETE FROM audit_events WHERE seq = 2",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
)
async def test_changes_through_sql_are_refused(database: Database, statement: str) -> None:
    await record_many(database, 2)

    async def change() -> None:
        async with database.transaction() as session:
            await session.execute(text(statement))

    with pytest.raises(DBAPIError) as refused:
        await change()
    assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege)
    assert "append-only" in str(refused.value.orig)
    assert [row.seq for row in await rows(database)] == [1, 2]
    assert (await verify(database)).ok


async def test_the_escape_hatch_is_off_unless_set(database: Database) -> None:
    await record_many(database, 1)

    async def delete_all() -> None:
        async with database.transaction() as session:
            await session.execute(text("SET LOCAL cybergine.audit_maintenance = 'yes'"))
            await session.execute(text("DELETE FROM audit_events"))

    with pytest.raises(DBAPIError):
        await delete_all()


async def forge_entry(
    session: AsyncSession, *, seq: int, prev_hash: str, key: bytes | None
) -> None:
    """Insert an entry with believable content, hashed with ``key`` (None: a wrong hash)."""
    forged = AuditEvent(
        seq=seq,
        at=datetime.now(UTC),
        organisation_id=None,
        actor_type="system",
        actor_id="tests",
        actor_label=None,
        hash_format=2,
        action="test.event.recorded",
        target_type=None,
        target_id=None,
        details={"n": 2},
        prev_hash=prev_hash,
        hash="f" * 64,
    )
    if key is not None:
        forged.hash = expected_hash(forged, key)
    session.add(forged)
    await session.flush()


# Five entries (seq 1..5), then one kind of tampering; where it must be found.
TAMPERING = {
    "edited details": (["UPDATE audit_events SET details = '{\"n\": 9}' WHERE seq = 3"], 3),
    "edited actor": (["UPDATE audit_events SET actor_id = 'mallory' WHERE seq = 4"], 4),
    "format changed": (["UPDATE audit_events SET hash_format = 1 WHERE seq = 3"], 3),
    "edited time": (["UPDATE audit_events SET at = at - interval '1 day' WHERE seq = 2"], 2),
    "edited hash": (["UPDATE audit_events SET hash = repeat('a', 64) WHERE seq = 5"], 5),
    "deleted middle entry": (["DELETE FROM audit_events WHERE seq = 3"], 3),
    "swapped entries": (
        [
            "UPDATE audit_events SET seq = 1000 WHERE seq = 2",
            "UPDATE audit_events SET seq = 2 WHERE seq = 3",
            "UPDATE audit_events SET seq = 3 WHERE seq = 1000",
        ],
        2,
    ),
    "first entry re-anchored": (
        ["UPDATE audit_events SET prev_hash = repeat('1', 64) WHERE seq = 1"],
        1,
    ),
}


@pytest.mark.parametrize(("statements", "first_bad_seq"), TAMPERING.values(), ids=TAMPERING)
async def test_tampering_is_found_where_it_happened(
    database: Database, statements: list[str], first_bad_seq: int
) -> None:
    await record_many(database, 5)
    await tamper(database, *statements)
    result = await verify(database)
    assert not result.ok
    assert result.first_bad_seq == first_bad_seq
    assert result.checked == first_bad_seq - 1
    assert result.reason


@pytest.mark.parametrize("key", [None, OTHER_KEY], ids=["wrong hash", "another key"])
async def test_an_entry_inserted_in_the_middle_is_found(
    database: Database, key: bytes | None
) -> None:
    await record_many(database, 5)
    await tamper(
        database,
        "UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 3",
        "UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000",
    )
    second = (await rows(database))[1]
    async with database.transaction() as session:
        await forge_entry(session, seq=3, prev_hash=second.hash, key=key)
    result = await verify(database)
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 3, 2)


@pytest.mark.parametrize("key", [None, OTHER_KEY], ids=["wrong hash", "another key"])
async def test_an_entry_appended_by_a_forger_is_found(
    database: Database, key: bytes | None
) -> None:
    await record_many(database, 5)
    last = (await rows(database))[-1]
    async with database.transaction() as session:
        await forge_entry(session, seq=6, prev_hash=last.hash, key=key)
    result = await verify(database)
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 6, 5)


async def test_a_chain_verified_with_another_key_fails_at_the_first_entry(
    database: Database,
) -> None:
    await record_many(database, 3)
    result = await verify(database, key=OTHER_KEY)
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 1, 0)


async def test_an_empty_trail_verifies(database: Database) -> None:
    assert await verify(database) == audit.VerificationResult(ok=True, checked=0)


async def test_verification_streams_past_one_batch(database: Database) -> None:
    count = audit.VERIFY_BATCH_SIZE + 5
    async with database.transaction() as session:
        for number in range(count):
            await audit.record(
                session, action="test.bulk.write", actor=Actor.system(), details={"n": number}
            )
    assert await verify(database) == audit.VerificationResult(ok=True, checked=count)
    await tamper(database, f"DELETE FROM audit_events WHERE seq = {count - 2}")
    result = await verify(database)
    assert (result.first_bad_seq, result.checked) == (count - 2, count - 3)


async def test_purge_removes_expired_entries_and_the_rest_still_verifies(
    database: Database,
) -> None:
    await record_many(database, 3)
    boundary = datetime.now(UTC)
    await record_many(database, 3)
    expired_at = boundary + MAXIMUM_AGE[Retention.AUDIT]

    async with database.transaction() as session:
        assert await audit.purge_expired(session, now=expired_at - timedelta(days=1)) == 0
        assert await audit.purge_expired(session, now=expired_at) == 3
    # Entry 7 is the checkpoint: where the chain now starts, under the key.
    remaining = await rows(database)
    assert [row.seq for row in remaining] == [4, 5, 6, 7]
    assert remaining[-1].action == audit.CHECKPOINT_ACTION
    assert remaining[-1].details["first_kept_seq"] == 4
    assert remaining[-1].details["anchor_hash"] == remaining[0].prev_hash
    assert await verify(database) == audit.VerificationResult(ok=True, checked=4)

    await record_many(database, 1)
    assert [row.seq for row in await rows(database)] == [4, 5, 6, 7, 8]
    assert await verify(database) == audit.VerificationResult(ok=True, checked=5)


async def test_purge_keeps_the_newest_entry_so_the_chain_goes_on(database: Database) -> None:
    await record_many(database, 4)
    far_future = datetime.now(UTC) + timedelta(days=365 * 20)
    async with database.transaction() as session:
        assert await audit.purge_expired(session, now=far_future) == 3
        # The first checkpoint is as old as the rest: it goes, and a new one names 5.
        assert await audit.purge_expired(session, now=far_future) == 1
    await record_many(database, 1)
    assert [row.seq for row in await rows(database)] == [5, 6, 7]
    assert await verify(database) == audit.VerificationResult(ok=True, checked=3)


async def test_purge_in_batches_leaves_a_chain_that_verifies_after_each(
    database: Database,
) -> None:
    await record_many(database, 7)
    far_future = datetime.now(UTC) + timedelta(days=365 * 20)
    purged = []
    for _ in range(3):
        async with database.transaction() as session:
            purged.append(await audit.purge_expired(session, now=far_future, limit=3))
        assert (await verify(database)).ok
    assert purged == [3, 3, 2]


async def test_a_prefix_removed_without_the_purge_fails_verification(
    database: Database,
) -> None:
    await record_many(database, 5)
    await tamper(database, "DELETE FROM audit_events WHERE seq < 3")
    result = await verify(database)
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 2, 3)
    assert result.reason == "entries before 3 were removed without a purge checkpoint"


async def test_a_longer_prefix_removed_after_a_purge_fails_verification(
    database: Database,
) -> None:
    await record_many(database, 5)
    far_future = datetime.now(UTC) + timedelta(days=365 * 20)
    async with database.transaction() as session:
        await audit.purge_expired(session, now=far_future, limit=2)
    assert (await verify(database)).ok
    # The checkpoint names entry 3 as the first kept; removing entry 3 as well shows.
    await tamper(database, "DELETE FROM audit_events WHERE seq = 3")
    result = await verify(database)
    assert (result.ok, result.first_bad_seq) == (False, 3)


async def test_purge_closes_the_escape_hatch_behind_it(database: Database) -> None:
    await record_many(database, 2)

    async def purge_then_delete_all() -> None:
        async with database.transaction() as session:
            await audit.purge_expired(session)
            await session.execute(text("DELETE FROM audit_events"))

    with pytest.raises(DBAPIError):
        await purge_then_delete_all()


async def test_entries_outlive_their_organisation(database: Database) -> None:
    organisation_id = uuid7()
    async with database.transaction() as session:
        await session.execute(
            text("INSERT INTO organisations (id, name) VALUES (:id, 'Acme')"),
            {"id": organisation_id},
        )
        await audit.record(
            session,
            action="organisation.created",
            actor=Actor.system(),
            organisation_id=organisation_id,
        )
    async with database.transaction() as session:
        await session.execute(
            text("DELETE FROM organisations WHERE id = :id"), {"id": organisation_id}
        )
    (row,) = await rows(database)
    assert row.organisation_id == organisation_id
    assert (await verify(database)).ok


async def test_list_events_pages_an_organisations_entries_newest_first(
    database: Database,
) -> None:
    ours, theirs = uuid7(), uuid7()
    async with database.transaction() as session:
        for number in range(7):
            await audit.record(
                session,
                action="test.event.recorded",
                actor=Actor.system(),
                organisation_id=ours if number % 2 == 0 else theirs,
                details={"n": number},
            )
    async with database.transaction() as session:
        page = await audit.list_events(session, organisation_id=ours, limit=3)
        assert [event.seq for event in page] == [7, 5, 3]
        rest = await audit.list_events(session, organisation_id=ours, before_seq=page[-1].seq)
        assert [event.seq for event in rest] == [1]
        assert await audit.list_events(session, organisation_id=uuid.uuid4()) == []
        with pytest.raises(ValueError, match="limit"):
            await audit.list_events(session, organisation_id=ours, limit=0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "Login"}, "action"),
        ({"action": "auth"}, "action"),
        ({"action": "auth.login failed"}, "action"),
        ({"target_id": "x" * 201}, "target id"),
        ({"actor": Actor.user("u1", email="x" * 321)}, "actor label"),
    ],
)
async def test_malformed_entries_are_refused_before_anything_is_written(
    database: Database, fields: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"action": "auth.login.failed", "actor": Actor.system()}
    arguments.update(fields)
    async with database.transaction() as session:
        with pytest.raises(ValueError, match=message):
            await audit.record(session, **arguments)
    assert await rows(database) == []
