"""Whole-organisation exports: asked for by an owner, built by a job, taken once.

The life of one export: ``request_export`` (queued; the build job deferred in the same
transaction; audited) → ``build`` (the job: the ZIP written under the data directory's
``exports`` folder from one repeatable-read snapshot, then ready) → ``issue_link`` (a
single-use link, valid ``LINK_VALID``; only its token's hash is kept; audited) →
``claim_download`` (the link is spent, the file unlinked as it is opened; audited).
A file not taken within ``KEPT_FOR`` is deleted by ``expire``, a periodic job that also
removes any file whose row is gone (its organisation erased) or no longer needs one.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import structlog
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError

from cybergine.accounts.principal import Principal
from cybergine.accounts.tokens import constant_time_equal, new_token, token_hash
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.errors import Conflict, NotFound
from cybergine.job_names import JobName
from cybergine.privacy import audit
from cybergine.privacy.organisation_export.archive import write_archive
from cybergine.privacy.organisation_export.models import (
    IN_PROGRESS,
    ExportStatus,
    OrganisationExport,
)
from cybergine.queue import defer

log = structlog.get_logger(__name__)

EXPORTS_FOLDER = "exports"
# How long a built export waits for its download before its file is deleted.
KEPT_FOR = timedelta(days=7)
# How long one download link works.
LINK_VALID = timedelta(minutes=15)
# A build that has not finished by then died with its worker: it is marked failed, so
# the organisation may ask again.
BUILD_ABANDONED_AFTER = timedelta(hours=12)
EXPORTS_LISTED = 5
# How long the row of a finished export (taken, expired, failed) stays to be shown; the
# audit trail keeps what happened.
ROW_KEPT_FOR = timedelta(days=30)
FRESH_FILE = timedelta(minutes=10)


def exports_directory(data_dir: Path) -> Path:
    return data_dir / EXPORTS_FOLDER


def _file_name(export_id: uuid.UUID) -> str:
    return f"{export_id}.zip"


def _target(export: OrganisationExport) -> str:
    return str(export.id)


async def request_export(scope: TenantScope, caller: Principal) -> OrganisationExport:
    """Queue an export of the caller's organisation: one at a time."""
    session = scope.session
    running = await session.scalar(
        scope.select(OrganisationExport).where(OrganisationExport.status.in_(IN_PROGRESS)).limit(1)
    )
    if running is not None:
        raise Conflict("An export of this organisation is already being prepared.")
    export = OrganisationExport(
        organisation_id=scope.organisation_id, requested_by_user_id=caller.user_id
    )
    try:
        async with session.begin_nested():
            session.add(export)
            await session.flush()
    except IntegrityError:  # another request won the race (the partial unique index)
        raise Conflict("An export of this organisation is already being prepared.") from None
    await defer(session, JobName.BUILD_ORGANISATION_EXPORT, export_id=str(export.id))
    await audit.record(
        session,
        action="organisation.export.requested",
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="organisation_export",
        target_id=_target(export),
    )
    return export


async def get_export(scope: TenantScope, export_id: uuid.UUID) -> OrganisationExport:
    return await scope.get(OrganisationExport, export_id, what="export")


async def recent_exports(scope: TenantScope) -> list[OrganisationExport]:
    rows = await scope.session.scalars(
        scope.select(OrganisationExport)
        .order_by(OrganisationExport.id.desc())
        .limit(EXPORTS_LISTED)
    )
    return list(rows)


async def build(database: Database, data_dir: Path, export_id: uuid.UUID) -> ExportStatus | None:
    """The job: write the archive, then mark the export ready. Runs again from the start
    if its worker died (the partial file is overwritten); a no-op once it is done."""
    async with database.transaction() as session:
        export = await session.get(OrganisationExport, export_id, with_for_update=True)
        if export is None or export.status not in IN_PROGRESS:
            return None
        export.status = ExportStatus.BUILDING
        organisation_id = export.organisation_id
    directory = exports_directory(data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = directory / _file_name(export_id)
    partial = final.with_name(final.name + ".partial")
    try:
        async with database.transaction() as session:
            # One snapshot for every table, and nothing written by mistake.
            await session.execute(
                text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            )
            counts = await write_archive(session, organisation_id, partial)
        size, digest = await asyncio.to_thread(_size_and_digest, partial)
        partial.replace(final)
    except Exception as error:
        partial.unlink(missing_ok=True)
        log.exception("organisation export failed", export_id=str(export_id))
        return await _finish(database, export_id, failed=type(error).__name__)
    status = await _finish(database, export_id, file=final, size=size, digest=digest, counts=counts)
    if status is not ExportStatus.READY:
        final.unlink(missing_ok=True)  # erased or given up on meanwhile
    return status


async def _finish(
    database: Database,
    export_id: uuid.UUID,
    *,
    failed: str | None = None,
    file: Path | None = None,
    size: int = 0,
    digest: str = "",
    counts: dict[str, int] | None = None,
) -> ExportStatus | None:
    async with database.transaction() as session:
        export = await session.get(OrganisationExport, export_id, with_for_update=True)
        if export is None or export.status is not ExportStatus.BUILDING:
            return None
        now = datetime.now(UTC)
        if failed is not None or file is None:
            export.status = ExportStatus.FAILED
            export.error = f"The export could not be written ({failed})."[:200]
        else:
            export.status = ExportStatus.READY
            export.file_name = file.name
            export.size_bytes = size
            export.sha256 = digest
            export.counts = counts or {}
            export.ready_at = now
            export.expires_at = now + KEPT_FOR
        await audit.record(
            session,
            action=f"organisation.export.{export.status.value}",
            actor=audit.Actor.system(),
            organisation_id=export.organisation_id,
            target_type="organisation_export",
            target_id=_target(export),
            details={"size_bytes": export.size_bytes, "tables": len(export.counts)},
        )
        return export.status


def _size_and_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


def _require_ready(export: OrganisationExport, now: datetime) -> None:
    if export.status is ExportStatus.READY and export.expires_at and export.expires_at > now:
        return
    if export.status in IN_PROGRESS:
        raise Conflict("This export is still being prepared; try again when it is ready.")
    state = "expired" if export.status is ExportStatus.READY else export.status.value
    raise Conflict(f"This export is {state}; ask for a new one.")


@dataclass(frozen=True)
class Link:
    token: str
    expires_at: datetime


async def issue_link(scope: TenantScope, caller: Principal, export_id: uuid.UUID) -> Link:
    """A new single-use download link for a ready export; any earlier one stops working."""
    export = await scope.get(OrganisationExport, export_id, for_update=True, what="export")
    now = datetime.now(UTC)
    _require_ready(export, now)
    token = new_token()
    export.link_token_hash = token_hash(token)
    export.link_expires_at = min(now + LINK_VALID, export.expires_at or now)
    await audit.record(
        scope.session,
        action="organisation.export.link_issued",
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="organisation_export",
        target_id=_target(export),
    )
    return Link(token=token, expires_at=export.link_expires_at)


@dataclass(frozen=True)
class Download:
    file: BinaryIO
    size: int
    export: OrganisationExport


async def claim_download(
    scope: TenantScope, caller: Principal, data_dir: Path, export_id: uuid.UUID, token: str
) -> Download:
    """Spends the link and hands over the open file, already unlinked: the export is
    taken once, and its file leaves the disk as the download ends."""
    export = await scope.get(OrganisationExport, export_id, for_update=True, what="export")
    now = datetime.now(UTC)
    if (
        export.status is not ExportStatus.READY
        or export.link_token_hash is None
        or export.link_expires_at is None
        or export.link_expires_at <= now
        or not constant_time_equal(export.link_token_hash, token_hash(token))
    ):
        raise NotFound(
            "This download link is not valid: it was used, it expired, or a newer one replaced it."
        )
    path = exports_directory(data_dir) / (export.file_name or _file_name(export.id))
    try:
        file = path.open("rb")
    except FileNotFoundError:
        export.status = ExportStatus.EXPIRED
        raise NotFound("This export's file is gone; ask for a new export.") from None
    size = os.fstat(file.fileno()).st_size
    path.unlink()
    export.status = ExportStatus.DOWNLOADED
    export.downloaded_at = now
    export.link_token_hash = None
    export.link_expires_at = None
    await audit.record(
        scope.session,
        action="organisation.export.downloaded",
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="organisation_export",
        target_id=_target(export),
        details={"size_bytes": size},
    )
    return Download(file=file, size=size, export=export)


async def expire(database: Database, data_dir: Path, *, now: datetime | None = None) -> int:
    """The periodic clean-up: ready exports past their time expire, builds whose worker
    died fail, finished exports' rows go ``ROW_KEPT_FOR`` later, and every file in the
    exports folder that no ready or building export needs is deleted (its organisation
    erased, its download interrupted). Answers the files deleted."""
    now = now or datetime.now(UTC)
    async with database.transaction() as session:
        expired = await session.scalars(
            select(OrganisationExport)
            .where(
                OrganisationExport.status == ExportStatus.READY,
                OrganisationExport.expires_at <= now,
            )
            .with_for_update(skip_locked=True)
        )
        for export in expired:
            export.status = ExportStatus.EXPIRED
            export.link_token_hash = None
        abandoned = await session.scalars(
            select(OrganisationExport)
            .where(
                OrganisationExport.status.in_(IN_PROGRESS),
                OrganisationExport.updated_at <= now - BUILD_ABANDONED_AFTER,
            )
            .with_for_update(skip_locked=True)
        )
        for export in abandoned:
            export.status = ExportStatus.FAILED
            export.error = "The export took too long and was given up."
        await session.execute(
            delete(OrganisationExport).where(
                OrganisationExport.status.not_in((ExportStatus.READY, *IN_PROGRESS)),
                OrganisationExport.updated_at <= now - ROW_KEPT_FOR,
            )
        )
        kept = {
            str(export_id)
            for export_id in await session.scalars(
                select(OrganisationExport.id).where(
                    OrganisationExport.status.in_((ExportStatus.READY, *IN_PROGRESS))
                )
            )
        }
    directory = exports_directory(data_dir)
    if not directory.is_dir():
        return 0
    deleted = 0
    recent = (now - FRESH_FILE).timestamp()
    for path in directory.iterdir():
        # A file younger than that may belong to a build that started after the query.
        if path.name.split(".", 1)[0] not in kept and path.stat().st_mtime < recent:
            path.unlink(missing_ok=True)
            deleted += 1
    if deleted:
        log.info("organisation exports deleted", files=deleted)
    return deleted
