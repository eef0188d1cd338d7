"""Secrets at rest: third-party access tokens and API keys are stored as Fernet tokens.

``EncryptedString`` is the column type: Python sees the plaintext, the database holds
only the token. Encryption uses the first of ``ServerKeys.encryption_keys``; decryption
tries each of them (``MultiFernet``), so a new key can be put first while secrets written
under the old ones stay readable until ``rotate_all`` (``cybergine keys rotate``)
re-encrypts them and the old key can be retired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.privacy import keys
from cybergine.privacy.keys import KeyConfigurationError

log = structlog.get_logger(__name__)


class SecretDecryptionError(RuntimeError):
    """A stored secret fits none of the configured encryption keys."""


_NO_KEY_FITS = (
    "a stored secret could not be decrypted with any key in CYBERGINE_ENCRYPTION_KEYS "
    "(was the key it was encrypted with removed, or is the value corrupt?)"
)


class SecretBox:
    """Encrypts with the first key; decrypts with any of them."""

    def __init__(self, encryption_keys: Sequence[str]) -> None:
        if not encryption_keys:
            raise KeyConfigurationError("CYBERGINE_ENCRYPTION_KEYS holds no key.")
        fernets = [Fernet(key) for key in encryption_keys]
        self._first = fernets[0]
        self._all = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._all.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._all.decrypt(token.encode()).decode()
        # ValueError also covers plaintext that is not UTF-8. `from None`: the chained
        # exception must not carry any part of the secret into logs.
        except (InvalidToken, ValueError):
            raise SecretDecryptionError(_NO_KEY_FITS) from None

    def rotate(self, token: str) -> str:
        """The same secret encrypted under the first key."""
        try:
            return self._all.rotate(token.encode()).decode("ascii")
        except (InvalidToken, ValueError):
            raise SecretDecryptionError(_NO_KEY_FITS) from None

    def is_current(self, token: str) -> bool:
        """True when ``token`` is already encrypted with the first key."""
        try:
            # Checks the first key's HMAC without decrypting.
            self._first.extract_timestamp(token.encode())
        except (InvalidToken, ValueError):
            return False
        return True


_cached_box: tuple[keys.ServerKeys, SecretBox] | None = None


def secret_box() -> SecretBox:
    """The box for the keys currently installed (``keys.current()``)."""
    global _cached_box
    installed = keys.current()
    cached = _cached_box
    # Identity, not equality: `keys.install` of new keys must never serve a stale box.
    if cached is None or cached[0] is not installed:
        cached = (installed, SecretBox(installed.encryption_keys))
        _cached_box = cached
    return cached[1]


class EncryptedString(sa.types.TypeDecorator[str]):
    """A string stored as a Fernet token; ``None`` stays NULL.

    Tokens are randomised, so the column cannot be searched or compared in SQL.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"EncryptedString takes str, not {type(value).__name__}")
        return secret_box().encrypt(value)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return secret_box().decrypt(value)


def encrypted_columns(metadata: sa.MetaData) -> list[tuple[sa.Table, sa.Column[Any]]]:
    """Every ``EncryptedString`` column of ``metadata``, in table dependency order."""
    return [
        (table, column)
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, EncryptedString)
    ]


@dataclass(frozen=True)
class ColumnRotation:
    rotated: int = 0
    already_current: int = 0


@dataclass(frozen=True)
class RotationReport:
    """Counts per ``"table.column"`` of one ``rotate_all`` run."""

    columns: Mapping[str, ColumnRotation]

    @property
    def rotated(self) -> int:
        return sum(column.rotated for column in self.columns.values())

    @property
    def already_current(self) -> int:
        return sum(column.already_current for column in self.columns.values())

    def summary(self) -> str:
        return (
            f"re-encrypted {self.rotated} secrets in {len(self.columns)} columns; "
            f"{self.already_current} were already current"
        )


async def rotate_all(
    session: AsyncSession,
    *,
    metadatas: Sequence[sa.MetaData],
    batch_size: int = 500,
) -> RotationReport:
    """Re-encrypt every stored secret of ``metadatas``' encrypted columns under the
    first key, in the session's transaction (``cybergine keys rotate`` passes the whole
    schema, ``cybergine.db.models.metadata``: this module cannot import it, the model
    modules import this one for ``EncryptedString``).

    Rows already under the first key are left alone, so a second run changes nothing.
    Does not commit.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    box = secret_box()
    columns: dict[str, ColumnRotation] = {}
    for metadata in metadatas:
        for table, column in encrypted_columns(metadata):
            name = f"{table.fullname}.{column.name}"
            if name in columns:
                continue
            columns[name] = await _rotate_column(session, box, table, column, name, batch_size)
            log.info(
                "encrypted column rotated",
                column=name,
                rotated=columns[name].rotated,
                already_current=columns[name].already_current,
            )
    return RotationReport(columns=columns)


async def _rotate_column(
    session: AsyncSession,
    box: SecretBox,
    table: sa.Table,
    column: sa.Column[Any],
    name: str,
    batch_size: int,
) -> ColumnRotation:
    primary_key = list(table.primary_key.columns)
    if not primary_key:
        raise ValueError(f"{name}: a table with encrypted columns needs a primary key")
    # The raw token, bypassing EncryptedString's decryption.
    raw = sa.type_coerce(column, sa.Text)
    select = (
        sa.select(*primary_key, raw)
        .where(column.is_not(None))
        .order_by(*primary_key)
        .limit(batch_size)
    )
    update = (
        sa.update(table)
        .where(
            *(
                pk == sa.bindparam(f"_rotate_pk_{i}", type_=pk.type)
                for i, pk in enumerate(primary_key)
            ),
            # Compare-and-set: a secret changed by a concurrent transaction since we read
            # it is newer than ours and must not be overwritten with the old value.
            raw == sa.bindparam("_rotate_old", type_=sa.Text),
        )
        .values(
            {
                column: sa.bindparam("_rotate_new", type_=sa.Text),
                # Re-encryption is not a change of the row: keep `updated_at` and the like,
                # which retention reads, as they were.
                **{
                    other: other
                    for other in table.columns
                    if other is not column and other.onupdate is not None
                },
            }
        )
    )
    conn = await session.connection()
    rotated = already_current = 0
    last: tuple[Any, ...] | None = None
    while True:
        page = select
        if last is not None:
            page = page.where(_after(primary_key, last))
        rows = (await conn.execute(page)).all()
        if not rows:
            break
        changes: list[dict[str, Any]] = []
        for row in rows:
            pk_values, token = tuple(row[:-1]), str(row[-1])
            if box.is_current(token):
                already_current += 1
                continue
            try:
                new_token = box.rotate(token)
            except SecretDecryptionError:
                raise SecretDecryptionError(
                    f"{name}, row {_describe(primary_key, pk_values)}: {_NO_KEY_FITS}"
                ) from None
            changes.append(
                {
                    **{f"_rotate_pk_{i}": value for i, value in enumerate(pk_values)},
                    "_rotate_old": token,
                    "_rotate_new": new_token,
                }
            )
        if changes:
            result = await conn.execute(update, changes)
            rotated += result.rowcount
        last = tuple(rows[-1][: len(primary_key)])
    return ColumnRotation(rotated=rotated, already_current=already_current)


def _after(primary_key: list[sa.Column[Any]], last: tuple[Any, ...]) -> sa.ColumnElement[bool]:
    if len(primary_key) == 1:
        single: sa.ColumnElement[bool] = primary_key[0] > last[0]
        return single
    return sa.tuple_(*primary_key) > sa.tuple_(
        *(sa.literal(value, type_=pk.type) for pk, value in zip(primary_key, last, strict=True))
    )


def _describe(primary_key: list[sa.Column[Any]], values: Sequence[Any]) -> str:
    return ", ".join(f"{pk.name}={value}" for pk, value in zip(primary_key, values, strict=True))


__all__ = [
    "ColumnRotation",
    "EncryptedString",
    "RotationReport",
    "SecretBox",
    "SecretDecryptionError",
    "encrypted_columns",
    "rotate_all",
    "secret_box",
]
