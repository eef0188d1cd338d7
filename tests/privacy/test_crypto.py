"""Secrets at rest: Fernet tokens in the column, never the plaintext, and key rotation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, LiteralString

import psycopg
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from cybergine.db.engine import Database
from cybergine.db.models import metadata as cybergine_schema
from cybergine.privacy import keys
from cybergine.privacy.crypto import (
    ColumnRotation,
    EncryptedString,
    SecretBox,
    SecretDecryptionError,
    encrypted_columns,
    rotate_all,
    secret_box,
)

# Our own metadata, not cybergine's: the migration checks must not see these tables.
metadata = sa.MetaData()

integrations = sa.Table(
    "test_integrations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("access_token", EncryptedString(), nullable=True),
    sa.Column("api_key", EncryptedString(), nullable=True),
    sa.Column(
        "updated_at",
        sa.DateTime(timezone=True),
        server_default=sa.func.now(),
        onupdate=sa.func.now(),
        nullable=False,
    ),
)

# A composite primary key, to page through with a row-value comparison.
credentials = sa.Table(
    "test_credentials",
    metadata,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("secret", EncryptedString(), nullable=True),
)

SECRET_KEY = b"k" * 48
InstallKeys = Callable[..., keys.ServerKeys]


@pytest.fixture
def install_keys(server_keys: keys.ServerKeys) -> Iterator[InstallKeys]:
    """Install keys made of the given Fernet keys; the run's keys come back afterwards."""

    def install(*encryption_keys: str) -> keys.ServerKeys:
        installed = keys.ServerKeys(secret_key=SECRET_KEY, encryption_keys=encryption_keys)
        keys.install(installed)
        return installed

    try:
        yield install
    finally:
        keys.install(server_keys)


@pytest.fixture
async def tables(database: Database) -> Database:
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return database


def raw_values(database_url: str, query: LiteralString) -> list[tuple[Any, ...]]:
    """What is really stored, read past SQLAlchemy and its column types."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(query).fetchall()


def new_key() -> str:
    return keys.generate_fernet_key()


# --- SecretBox ----------------------------------------------------------------------


def test_round_trip_and_every_token_differs() -> None:
    box = SecretBox([new_key()])
    first = box.encrypt("EAAG-whatsapp-token")
    second = box.encrypt("EAAG-whatsapp-token")
    assert first != second
    assert "EAAG" not in first
    assert box.decrypt(first) == box.decrypt(second) == "EAAG-whatsapp-token"
    assert box.decrypt(box.encrypt("")) == ""


def test_unicode_and_a_100_kb_secret() -> None:
    box = SecretBox([new_key()])
    unicode = "clé-секрет-秘密-🔑"
    large = "x" * 100_000
    assert box.decrypt(box.encrypt(unicode)) == unicode
    assert box.decrypt(box.encrypt(large)) == large


def test_wrong_keys_raise_our_error_without_the_plaintext() -> None:
    token = SecretBox([new_key()]).encrypt("sk-live-plaintext")
    with pytest.raises(SecretDecryptionError) as caught:
        SecretBox([new_key(), new_key()]).decrypt(token)
    message = str(caught.value)
    assert "CYBERGINE_ENCRYPTION_KEYS" in message
    assert "sk-live-plaintext" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_garbage_is_a_decryption_error_too() -> None:
    box = SecretBox([new_key()])
    for garbage in ("", "not a token", "ünïcode", "gAAAAA"):
        with pytest.raises(SecretDecryptionError):
            box.decrypt(garbage)
        assert not box.is_current(garbage)


def test_rotate_moves_a_token_to_the_first_key() -> None:
    old, new = new_key(), new_key()
    token = SecretBox([old]).encrypt("secret")
    both = SecretBox([new, old])
    assert not both.is_current(token)
    rotated = both.rotate(token)
    assert both.is_current(rotated)
    assert SecretBox([new]).decrypt(rotated) == "secret"
    with pytest.raises(SecretDecryptionError):
        SecretBox([new]).rotate(SecretBox([new_key()]).encrypt("secret"))


def test_a_box_needs_a_key() -> None:
    with pytest.raises(keys.KeyConfigurationError):
        SecretBox([])


def test_secret_box_follows_the_installed_keys(install_keys: InstallKeys) -> None:
    assert secret_box() is secret_box()
    first = secret_box()
    key = new_key()
    install_keys(key)
    assert secret_box() is not first
    assert SecretBox([key]).decrypt(secret_box().encrypt("x")) == "x"


# --- EncryptedString ----------------------------------------------------------------


def test_encrypted_columns_finds_every_encrypted_column() -> None:
    found = [(table.name, column.name) for table, column in encrypted_columns(metadata)]
    assert sorted(found) == [
        ("test_credentials", "secret"),
        ("test_integrations", "access_token"),
        ("test_integrations", "api_key"),
    ]


async def test_the_column_stores_only_the_token(tables: Database, database_url: str) -> None:
    plaintexts = {1: "EAAG-meta-token", 2: "clé-секрет-秘密-🔑", 3: "y" * 100_000}
    async with tables.transaction() as session:
        await session.execute(
            sa.insert(integrations),
            [
                {"id": id_, "label": f"row {id_}", "access_token": text}
                for id_, text in plaintexts.items()
            ]
            + [{"id": 4, "label": "no token", "access_token": None}],
        )

    stored = dict(raw_values(database_url, "SELECT id, access_token FROM test_integrations"))
    assert stored[4] is None
    box = secret_box()
    for id_, plaintext in plaintexts.items():
        token = stored[id_]
        assert isinstance(token, str)
        assert plaintext not in token
        assert plaintext[:8] not in token
        assert box.decrypt(token) == plaintext
        Fernet(keys.current().encryption_keys[0]).decrypt(token)  # a plain Fernet token

    async with tables.transaction() as session:
        read = dict(
            (await session.execute(sa.select(integrations.c.id, integrations.c.access_token))).all()
        )
    assert read == {**plaintexts, 4: None}


async def test_reading_with_the_wrong_keys_raises(
    tables: Database, install_keys: InstallKeys
) -> None:
    install_keys(new_key())
    async with tables.transaction() as session:
        await session.execute(
            sa.insert(integrations).values(id=1, label="a", access_token="sk-live-plaintext")
        )
    install_keys(new_key())
    async with tables.transaction() as session:
        with pytest.raises(SecretDecryptionError) as caught:
            (await session.execute(sa.select(integrations.c.access_token))).all()
    assert "sk-live-plaintext" not in str(caught.value)


async def test_only_strings_are_encrypted(tables: Database) -> None:
    async with tables.transaction() as session:
        with pytest.raises(sa.exc.StatementError, match="EncryptedString takes str"):
            await session.execute(
                sa.insert(integrations).values(id=1, label="a", access_token=b"bytes")
            )


# --- Rotation -----------------------------------------------------------------------


async def test_rotation_moves_every_secret_to_the_new_key(
    tables: Database, database_url: str, install_keys: InstallKeys
) -> None:
    key_a, key_b = new_key(), new_key()
    install_keys(key_a)
    rows = [
        {
            "id": id_,
            "label": f"row {id_}",
            "access_token": None if id_ % 3 == 0 else f"token-{id_}",
            "api_key": None if id_ % 4 == 0 else f"api-key-{id_}",
        }
        for id_ in range(1, 12)
    ]
    creds = [
        {"tenant": tenant, "slot": slot, "secret": f"{tenant}-{slot}"}
        for tenant in ("acme", "globex")
        for slot in range(3)
    ] + [{"tenant": "initech", "slot": 0, "secret": None}]
    async with tables.transaction() as session:
        await session.execute(sa.insert(integrations), rows)
        await session.execute(sa.insert(credentials), creds)
    before = dict(raw_values(database_url, "SELECT id, updated_at FROM test_integrations"))
    tokens_before = raw_values(database_url, "SELECT id, access_token FROM test_integrations")

    install_keys(key_b, key_a)
    async with tables.transaction() as session:
        report = await rotate_all(session, metadatas=[metadata], batch_size=2)

    access = sum(1 for row in rows if row["access_token"] is not None)
    api = sum(1 for row in rows if row["api_key"] is not None)
    assert report.columns == {
        "test_integrations.access_token": ColumnRotation(rotated=access, already_current=0),
        "test_integrations.api_key": ColumnRotation(rotated=api, already_current=0),
        "test_credentials.secret": ColumnRotation(rotated=6, already_current=0),
    }
    assert report.rotated == access + api + 6
    assert report.summary() == (
        f"re-encrypted {access + api + 6} secrets in 3 columns; 0 were already current"
    )

    # Key B alone now reads everything; the plaintexts did not change.
    only_b = SecretBox([key_b])
    stored = raw_values(database_url, "SELECT id, access_token, api_key FROM test_integrations")
    by_id = {row["id"]: row for row in rows}
    for id_, access_token, api_key in stored:
        expected = by_id[id_]
        for token, plaintext in (
            (access_token, expected["access_token"]),
            (api_key, expected["api_key"]),
        ):
            if plaintext is None:
                assert token is None
            else:
                assert isinstance(token, str)
                assert only_b.decrypt(token) == plaintext
    for tenant, slot, secret in raw_values(
        database_url, "SELECT tenant, slot, secret FROM test_credentials"
    ):
        if tenant == "initech":
            assert secret is None
        else:
            assert only_b.decrypt(secret) == f"{tenant}-{slot}"
    assert set(tokens_before).isdisjoint(
        raw_values(
            database_url,
            "SELECT id, access_token FROM test_integrations WHERE access_token IS NOT NULL",
        )
    )
    # Re-encryption is not an edit: `updated_at` (which retention reads) stands still.
    after = dict(raw_values(database_url, "SELECT id, updated_at FROM test_integrations"))
    assert after == before
    assert all(isinstance(value, datetime) for value in after.values())

    # Idempotent: the second run rotates nothing and writes nothing.
    tokens_after = raw_values(database_url, "SELECT * FROM test_credentials ORDER BY 1, 2")
    async with tables.transaction() as session:
        again = await rotate_all(session, metadatas=[metadata], batch_size=2)
    assert again.rotated == 0
    assert again.already_current == report.rotated
    assert raw_values(database_url, "SELECT * FROM test_credentials ORDER BY 1, 2") == tokens_after


async def test_rotation_skips_secrets_already_under_the_first_key(
    tables: Database, install_keys: InstallKeys
) -> None:
    key_a, key_b = new_key(), new_key()
    install_keys(key_a)
    async with tables.transaction() as session:
        await session.execute(
            sa.insert(credentials), [{"tenant": "old", "slot": i, "secret": "a"} for i in range(3)]
        )
    install_keys(key_b, key_a)
    async with tables.transaction() as session:
        await session.execute(
            sa.insert(credentials), [{"tenant": "new", "slot": i, "secret": "b"} for i in range(2)]
        )
        report = await rotate_all(session, metadatas=[metadata], batch_size=500)
    assert report.columns["test_credentials.secret"] == ColumnRotation(rotated=3, already_current=2)
    assert report.columns["test_integrations.access_token"] == ColumnRotation()


async def test_rotation_stops_at_a_secret_no_key_fits(
    tables: Database, database_url: str, install_keys: InstallKeys
) -> None:
    lost, key_a, key_b = new_key(), new_key(), new_key()
    install_keys(lost)
    async with tables.transaction() as session:
        await session.execute(sa.insert(credentials).values(tenant="t", slot=7, secret="orphan"))
    install_keys(key_a)
    async with tables.transaction() as session:
        await session.execute(sa.insert(credentials).values(tenant="t", slot=1, secret="kept"))
    before = raw_values(database_url, "SELECT * FROM test_credentials ORDER BY 1, 2")

    install_keys(key_b, key_a)
    with pytest.raises(SecretDecryptionError) as caught:
        async with tables.transaction() as session:
            await rotate_all(session, metadatas=[metadata])
    assert "test_credentials.secret" in str(caught.value)
    assert "slot=7" in str(caught.value)
    assert "orphan" not in str(caught.value)
    # The transaction rolled back: nothing was half rotated.
    assert raw_values(database_url, "SELECT * FROM test_credentials ORDER BY 1, 2") == before


async def test_rotation_of_cybergine_schema_runs(database: Database) -> None:
    async with database.transaction() as session:
        report = await rotate_all(session, metadatas=[cybergine_schema])
    assert report.rotated == 0


async def test_rotation_never_overwrites_a_secret_changed_meanwhile(
    tables: Database, database_url: str, install_keys: InstallKeys
) -> None:
    key_a, key_b = new_key(), new_key()
    install_keys(key_a)
    async with tables.transaction() as session:
        await session.execute(
            sa.insert(credentials),
            [{"tenant": "t", "slot": i, "secret": f"v1-{i}"} for i in range(3)],
        )
    # Another process, still on key A, saves a new secret for slot 1 after rotation read
    # the rows and before it writes them back.
    newer = SecretBox([key_a]).encrypt("v2-1")

    written: list[bool] = []

    def concurrent_write(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE test_credentials") and not written:
            written.append(True)
            with psycopg.connect(database_url, autocommit=True) as other:
                other.execute("UPDATE test_credentials SET secret = %s WHERE slot = 1", (newer,))

    sa.event.listen(tables.engine.sync_engine, "before_cursor_execute", concurrent_write)
    install_keys(key_b, key_a)
    try:
        async with tables.transaction() as session:
            report = await rotate_all(session, metadatas=[metadata])
    finally:
        sa.event.remove(tables.engine.sync_engine, "before_cursor_execute", concurrent_write)
    assert written
    assert report.columns["test_credentials.secret"] == ColumnRotation(rotated=2)

    stored = dict(raw_values(database_url, "SELECT slot, secret FROM test_credentials"))
    assert stored[1] == newer
    assert SecretBox([key_b]).decrypt(stored[0]) == "v1-0"
    assert SecretBox([key_b]).decrypt(stored[2]) == "v1-2"
