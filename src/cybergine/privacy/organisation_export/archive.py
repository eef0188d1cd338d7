"""What a whole-organisation export holds, and the ZIP it is written to.

Every table the organisation owns (``TenantMixin``) is written, so a table added later
is exported without more code, except those ``SKIPPED`` says why not (indexes derived
from other tables, the exports themselves). In each table, every column but the
organisation's id (the same everywhere), credentials (``CREDENTIALS``: hashes of
secrets, and every encrypted column) and search-index columns. The team is written
with its people's names and addresses (``members.jsonl``), which live in the global
``users`` table.

The archive: ``organisation.json``, one JSON Lines file per table (``<table>.jsonl``,
one row a line, in id order), each bytes column's values as files of their own
(``files/<table>/<column>/<id>``, named from the row by ``<column>_file``), and last
``manifest.json``: the SHA-256, size and row count of every other file, signed by the
server as a customer's bundle is (``manifest.sig``, ``signing-key.pem``). Rows are read
from a server-side cursor a batch at a time and written by a thread, so neither memory
nor the event loop depends on how many messages an organisation has.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import enum
import hashlib
import json
import uuid
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import Membership, Organisation, User
from cybergine.db.base import Base
from cybergine.privacy import signing
from cybergine.privacy.bundle import MANIFEST, PUBLIC_KEY, SIGNATURE
from cybergine.privacy.crypto import EncryptedString

ARCHIVE_FORMAT = "cybergine.organisation-export/1"
TENANT_COLUMN = "organisation_id"

# Tenant tables not written, and why.
SKIPPED: Mapping[str, str] = {
    "kb_chunks": "the search index of kb_items, rebuilt from them",
    "kb_lexicon": "word statistics of the search index",
    "kb_index_stats": "sizes of the search index",
    "catalog_product_search": "the product search index, rebuilt from the catalogue",
    "organisation_exports": "the exports themselves",
    # Written as members.jsonl, with each member's name and e-mail address.
    "memberships": "written as members.jsonl",
}
# Columns that identify a credential, never data: not handed out even to an owner.
CREDENTIALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("api_keys", "key_hash"),
        ("invitations", "token_hash"),
        ("whatsapp_numbers", "verify_token_sha256"),
    }
)
# Types never written: secrets (encrypted) and what a search index derives from text.
UNWRITTEN_TYPES: tuple[type[Any], ...] = (EncryptedString, TSVECTOR, Vector)

ROWS_PER_BATCH = 2000
# Bytes columns (attachments, knowledge files) are read a few rows at a time.
FILES_PER_BATCH = 8


def exported_tables() -> list[sa.Table]:
    """The organisation's tables an export writes, in dependency order."""
    return [
        table
        for table in Base.metadata.sorted_tables
        if TENANT_COLUMN in table.c and table.name not in SKIPPED
    ]


def written_columns(table: sa.Table) -> list[sa.Column[Any]]:
    """The columns of ``table`` written into its JSON Lines (bytes columns included:
    their values go to files of their own)."""
    return [
        column
        for column in table.c
        if column.name != TENANT_COLUMN
        and (table.name, column.name) not in CREDENTIALS
        and not isinstance(column.type, UNWRITTEN_TYPES)
    ]


def _is_bytes(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, sa.LargeBinary)


def file_path(table: str, column: str, row_id: object) -> str:
    return f"files/{table}/{column}/{row_id}"


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"not written to an export: {type(value).__name__}")


def json_line(row: Mapping[str, Any]) -> bytes:
    return (json.dumps(row, default=_default, ensure_ascii=False) + "\n").encode()


@dataclass
class Entry:
    path: str
    sha256: str
    bytes: int
    rows: int | None = None


@dataclass
class ArchiveWriter:
    """The ZIP being written: one member open at a time, each hashed as it is written.
    Its methods block (disk, compression): call them through ``asyncio.to_thread``."""

    zip_file: zipfile.ZipFile
    entries: list[Entry] = field(default_factory=list)
    _member: IO[bytes] | None = None
    _hash: Any = None
    _entry: Entry | None = None

    def begin(self, path: str, *, compress: bool = True, rows: bool = True) -> None:
        info = zipfile.ZipInfo(path, date_time=dt.datetime.now(dt.UTC).timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self._member = self.zip_file.open(info, "w", force_zip64=True)
        self._hash = hashlib.sha256()
        self._entry = Entry(path, "", 0, 0 if rows else None)

    def write(self, chunks: Iterable[bytes], *, rows: int = 0) -> None:
        assert self._member is not None
        assert self._entry is not None
        for chunk in chunks:
            self._member.write(chunk)
            self._hash.update(chunk)
            self._entry.bytes += len(chunk)
        if self._entry.rows is not None:
            self._entry.rows += rows

    def end(self) -> Entry:
        assert self._member is not None
        assert self._entry is not None
        self._member.close()
        entry, self._entry, self._member = self._entry, None, None
        entry.sha256 = self._hash.hexdigest()
        self.entries.append(entry)
        return entry

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        """Rows as JSON Lines: encoded here, in the writing thread, not on the loop."""
        self.write([json_line(row) for row in rows], rows=len(rows))

    def whole(self, path: str, data: bytes, *, compress: bool = True) -> Entry:
        self.begin(path, compress=compress, rows=False)
        self.write([data])
        return self.end()


async def write_archive(
    session: AsyncSession, organisation_id: uuid.UUID, path: Path
) -> dict[str, int]:
    """Writes the organisation's archive to ``path``; answers the rows written per
    table. ``session`` should see one snapshot (a repeatable-read transaction)."""
    organisation = await session.get(Organisation, organisation_id)
    if organisation is None:
        raise LookupError("the organisation is gone")
    counts: dict[str, int] = {}
    with zipfile.ZipFile(path, "w", allowZip64=True) as zip_file:
        writer = ArchiveWriter(zip_file)
        about = {
            "id": str(organisation.id),
            "name": organisation.name,
            "status": organisation.status.value,
            "erase_after": organisation.erase_after,
            "created_at": organisation.created_at,
        }
        await asyncio.to_thread(writer.whole, "organisation.json", json_line(about))
        counts["members"] = await _write_members(session, writer, organisation_id)
        for table in exported_tables():
            counts[table.name] = await _write_table(session, writer, table, organisation_id)
        manifest = {
            "format": ARCHIVE_FORMAT,
            "organisation_id": str(organisation_id),
            "exported_at": dt.datetime.now(dt.UTC).isoformat(),
            "skipped": dict(SKIPPED),
            "files": [
                {"path": e.path, "sha256": e.sha256, "bytes": e.bytes, "rows": e.rows}
                for e in writer.entries
            ],
        }
        data = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
        await asyncio.to_thread(writer.whole, MANIFEST, data)
        # Signed as a customer's bundle is, so ``cybergine privacy verify-export`` checks
        # an organisation's export too.
        await asyncio.to_thread(zip_file.writestr, SIGNATURE, signing.sign(data))
        await asyncio.to_thread(zip_file.writestr, PUBLIC_KEY, signing.public_key_pem())
    return counts


async def _write_members(
    session: AsyncSession, writer: ArchiveWriter, organisation_id: uuid.UUID
) -> int:
    result = await session.execute(
        sa.select(
            Membership.id,
            Membership.user_id,
            User.name,
            User.email,
            Membership.role,
            Membership.created_at.label("joined_at"),
        )
        .join(User, User.id == Membership.user_id)
        .where(Membership.organisation_id == organisation_id)
        .order_by(Membership.id)
    )
    members = [dict(row._mapping) for row in result]
    await asyncio.to_thread(writer.begin, "members.jsonl")
    await asyncio.to_thread(writer.write_rows, members)
    await asyncio.to_thread(writer.end)
    return len(members)


async def _write_table(
    session: AsyncSession, writer: ArchiveWriter, table: sa.Table, organisation_id: uuid.UUID
) -> int:
    columns = written_columns(table)
    plain = [c for c in columns if not _is_bytes(c)]
    files = [c for c in columns if _is_bytes(c)]
    # Which rows have a value in each bytes column: the line names its file.
    has_file = [(c.name, c.isnot(None).label(f"{c.name}__present")) for c in files]
    statement = (
        sa.select(*plain, *(flag for _, flag in has_file))
        .where(table.c[TENANT_COLUMN] == organisation_id)
        .order_by(table.c.id)
        .execution_options(yield_per=ROWS_PER_BATCH)
    )
    rows = 0
    await asyncio.to_thread(writer.begin, f"{table.name}.jsonl")
    result = await session.stream(statement)
    async for batch in result.partitions(ROWS_PER_BATCH):
        written = []
        for row in batch:
            values = dict(row._mapping)
            for name, flag in has_file:
                present = values.pop(flag.name)
                values[f"{name}_file"] = file_path(table.name, name, row.id) if present else None
            written.append(values)
        rows += len(written)
        await asyncio.to_thread(writer.write_rows, written)
    await asyncio.to_thread(writer.end)
    for column in files:
        await _write_files(session, writer, table, column, organisation_id)
    return rows


async def _write_files(
    session: AsyncSession,
    writer: ArchiveWriter,
    table: sa.Table,
    column: sa.Column[Any],
    organisation_id: uuid.UUID,
) -> None:
    statement = (
        sa.select(table.c.id, column)
        .where(table.c[TENANT_COLUMN] == organisation_id, column.isnot(None))
        .order_by(table.c.id)
        .execution_options(yield_per=FILES_PER_BATCH)
    )
    result = await session.stream(statement)
    async for batch in result.partitions(FILES_PER_BATCH):
        for row_id, data in batch:
            path = file_path(table.name, column.name, row_id)
            # Stored, not compressed: attachments are mostly images and PDFs already.
            content = bytes(cast(bytes, data))
            await asyncio.to_thread(writer.whole, path, content, compress=False)
