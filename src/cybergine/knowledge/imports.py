"""Importing many Q&A pairs (and text documents) at once, from a JSON Lines or CSV file,
as a shop keeps them in a spreadsheet or exports them from a help desk.

Each row is one item: a Q&A pair when it has a ``question`` (with ``answer``, and
``alternatives``: a list in JSON, one per line or separated by ``|`` in CSV), a text
document when it has ``text`` (with an optional ``title``); both may name a
``collection`` and an ``external_id``. A row whose ``external_id`` is already in the
knowledge base updates that item, so the same file can be imported again after editing.

A bad row is reported with its line number and reason and the rest goes in: each row is
written in a savepoint of its own, through the same service functions as a single item
(each defers its indexing job).

For millions of documents prepared offline, ``cybergine kb import`` (``bulk.py``) writes
chunks and vectors directly instead.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cybergine.db.tenancy import TenantScope
from cybergine.errors import CybergineError, InvalidInput
from cybergine.knowledge import service
from cybergine.knowledge.models import Item, ItemKind
from cybergine.web import hygiene

MAX_ROWS = 5_000
MAX_ERRORS_SHOWN = 200  # a file of nothing but bad rows says so without a huge report
_CSV_COLUMNS = {"question", "answer", "alternatives", "title", "text", "collection", "external_id"}


class ImportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def refuse(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(RowError(line, message[:300]))


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, Any]


def format_of(filename: str | None, content_type: str | None) -> ImportFormat:
    """The format a file's name or media type says; JSON Lines when neither says CSV."""
    name = (filename or "").lower()
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if name.endswith(".csv") or media in {"text/csv", "application/csv"}:
        return ImportFormat.CSV
    return ImportFormat.JSONL


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "This file is not UTF-8 text. Save it as UTF-8 (in a spreadsheet: CSV UTF-8) "
            "and import it again.",
            field="file",
        ) from exc


def _jsonl_rows(text: str, report: ImportReport) -> Iterator[_Row]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = hygiene.loads(line, what=f"Line {number}")
        except hygiene.InputRefused:
            report.refuse(number, "this line is not valid JSON.")
            continue
        if not isinstance(data, dict):
            report.refuse(
                number, 'each line must be a JSON object, such as {"question": "…", "answer": "…"}.'
            )
            continue
        yield _Row(number, data)


def _csv_rows(text: str, report: ImportReport) -> Iterator[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return
        columns = [name.strip().lower() for name in header]
        unknown = [name for name in columns if name and name not in _CSV_COLUMNS]
        if unknown or not ({"question", "text"} & set(columns)):
            raise InvalidInput(
                "The first line of the CSV file names its columns: question, answer and "
                "optionally alternatives, collection, external_id (or title and text for "
                "documents)."
                + (f" Not known: {', '.join(sorted(set(unknown)))[:200]}." if unknown else ""),
                field="file",
            )
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            values: dict[str, Any] = {}
            for name, cell in zip(columns, cells, strict=False):
                if name and cell.strip():
                    values[name] = cell
            if "alternatives" in values:
                values["alternatives"] = values["alternatives"].replace("|", "\n").splitlines()
            yield _Row(reader.line_num, values)
    except csv.Error as exc:
        report.refuse(reader.line_num, f"the CSV file could not be read from here on ({exc}).")


def _text(values: dict[str, Any], name: str) -> str | None:
    value = values.get(name)
    if value is None:
        return None
    if not isinstance(value, str | int | float):
        raise InvalidInput(f"`{name}` must be text.", field=name)
    return str(value)


def _alternatives(values: dict[str, Any]) -> list[str]:
    raw = values.get("alternatives")
    if raw is None:
        return []
    if isinstance(raw, str):
        return raw.splitlines()
    if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
        raise InvalidInput("`alternatives` must be a list of phrasings.", field="alternatives")
    return list(raw)


async def _existing(scope: TenantScope, external_id: str | None) -> Item | None:
    if external_id is None:
        return None
    return (
        await scope.session.execute(scope.select(Item).where(Item.external_id == external_id))
    ).scalar_one_or_none()


async def _write(scope: TenantScope, values: dict[str, Any], collection: str | None) -> bool:
    """One row; True when it updated an item already there."""
    found = hygiene.unstorable_in(values)
    if found is not None:
        raise InvalidInput(f"`{found[0]}` holds a character that is not text.")
    question, text = _text(values, "question"), _text(values, "text")
    external_id = service.clean_external_id(_text(values, "external_id"))
    collection = _text(values, "collection") or collection
    existing = await _existing(scope, external_id)
    if question is not None:
        answer = _text(values, "answer") or ""
        alternatives = _alternatives(values)
        if existing is None:
            await service.create_qa(
                scope,
                question=question,
                answer=answer,
                alternatives=alternatives,
                external_id=external_id,
                collection=collection,
            )
            return False
        if existing.kind is not ItemKind.QA:
            raise InvalidInput(f"external_id {external_id!r} is a document, not a Q&A pair.")
        await service.update_item(
            scope,
            existing.id,
            ItemKind.QA,
            service.ItemChanges(
                question=question, body=answer, alternatives=alternatives, collection=collection
            ),
        )
        return True
    if text is not None:
        title = _text(values, "title") or ""
        if existing is None:
            await service.create_document(
                scope, title=title, body=text, external_id=external_id, collection=collection
            )
            return False
        if existing.kind is not ItemKind.DOCUMENT:
            raise InvalidInput(f"external_id {external_id!r} is a Q&A pair, not a document.")
        await service.update_item(
            scope,
            existing.id,
            ItemKind.DOCUMENT,
            service.ItemChanges(title=title, body=text, collection=collection),
        )
        return True
    raise InvalidInput("a row needs a question and an answer (or a text, for a document).")


async def import_items(
    scope: TenantScope,
    data: bytes,
    *,
    file_format: ImportFormat,
    collection: str | None = None,
) -> ImportReport:
    """Every good row of the file, written; the bad ones in ``report.errors``. A file
    that is not UTF-8, has more than ``MAX_ROWS`` rows, or a CSV header we cannot read
    is refused as a whole (InvalidInput) before anything is written."""
    report = ImportReport()
    text = decode(data)
    reader = _csv_rows if file_format is ImportFormat.CSV else _jsonl_rows
    rows = list(reader(text, report))
    if len(rows) > MAX_ROWS:
        raise InvalidInput(
            f"A file imports at most {MAX_ROWS:,} rows; this one has {len(rows):,}. "
            "Split it into smaller files.",
            field="file",
        )
    if not rows and not report.error_count:
        raise InvalidInput("This file has no rows to import.", field="file")
    if collection is not None:
        collection = service.clean_collection_name(collection)
    for row in rows:
        try:
            async with scope.session.begin_nested():
                updated = await _write(scope, row.values, collection)
        except CybergineError as exc:
            report.refuse(row.line, exc.detail)
            continue
        if updated:
            report.updated += 1
        else:
            report.created += 1
    report.errors.sort(key=lambda error: error.line)
    return report
