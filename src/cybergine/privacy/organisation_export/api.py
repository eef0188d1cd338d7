"""``/api/v1/organisation/export``: an owner asks for a copy of everything the
organisation holds (202 and a status URL), follows it, asks for a single-use link once it
is ready, and downloads the ZIP through it. Allowed while the organisation is scheduled
for deletion (policy §11), and outside that time too."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.errors import Conflict
from cybergine.privacy.organisation_export import service
from cybergine.privacy.organisation_export.models import ExportStatus, OrganisationExport
from cybergine.web.deps import SettingsDep
from cybergine.web.downloads import content_disposition
from cybergine.web.openapi import may_answer

router = APIRouter(prefix="/api/v1/organisation/export", tags=["organisation"])

Owner = Annotated[Caller, authorize(Permission.ORGANISATION_EXPORT)]
CHUNK_BYTES = 1 << 20


class ExportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: ExportStatus
    requested_at: datetime
    ready_at: datetime | None
    expires_at: datetime | None = Field(description="Until when the file waits for its download.")
    downloaded_at: datetime | None
    size_bytes: int | None
    sha256: str | None = Field(description="SHA-256 of the whole ZIP.")
    counts: dict[str, Any] = Field(description="Rows written per table.")
    error: str | None
    status_url: str
    link_url: str = Field(description="POST here for a single-use download link, once ready.")


class LinkOut(BaseModel):
    download_url: str = Field(description="Works once, until expires_at.")
    expires_at: datetime


def status_url(export_id: uuid.UUID) -> str:
    return f"{router.prefix}/{export_id}"


def download_url(export_id: uuid.UUID, token: str) -> str:
    return f"{router.prefix}/{export_id}/download?token={token}"


def export_out(export: OrganisationExport) -> ExportOut:
    return ExportOut(
        id=export.id,
        status=export.status,
        requested_at=export.created_at,
        ready_at=export.ready_at,
        expires_at=export.expires_at,
        downloaded_at=export.downloaded_at,
        size_bytes=export.size_bytes,
        sha256=export.sha256,
        counts=export.counts or {},
        error=export.error,
        status_url=status_url(export.id),
        link_url=f"{status_url(export.id)}/link",
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportOut,
    responses=may_answer(Conflict),
    summary="Prepare a ZIP of everything the organisation holds (built by a job)",
)
async def request_export(caller: Owner, response: Response) -> ExportOut:
    export = await service.request_export(caller.scope, caller.principal)
    response.headers["Location"] = status_url(export.id)
    return export_out(export)


@router.get("", response_model=list[ExportOut], summary="The organisation's latest exports")
async def list_exports(caller: Owner) -> list[ExportOut]:
    return [export_out(e) for e in await service.recent_exports(caller.scope)]


@router.get("/{export_id}", response_model=ExportOut, summary="Where an export stands")
async def get_export(export_id: uuid.UUID, caller: Owner) -> ExportOut:
    return export_out(await service.get_export(caller.scope, export_id))


@router.post(
    "/{export_id}/link",
    status_code=status.HTTP_201_CREATED,
    response_model=LinkOut,
    responses=may_answer(Conflict),
    summary="A single-use download link for a ready export (audited)",
)
async def issue_link(export_id: uuid.UUID, caller: Owner) -> LinkOut:
    link = await service.issue_link(caller.scope, caller.principal, export_id)
    return LinkOut(download_url=download_url(export_id, link.token), expires_at=link.expires_at)


@router.get(
    "/{export_id}/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "The ZIP."}},
    summary="Download the export through its link, once (audited; the file is deleted)",
)
async def download(
    export_id: uuid.UUID,
    caller: Owner,
    settings: SettingsDep,
    # Optional here so that another organisation's export id answers 404 all the same.
    token: Annotated[str, Query(max_length=100)] = "",
) -> StreamingResponse:
    taken = await service.claim_download(
        caller.scope, caller.principal, settings.data_dir, export_id, token
    )
    return StreamingResponse(
        _chunks(taken.file),
        media_type="application/zip",
        headers={
            "Content-Length": str(taken.size),
            "Content-Disposition": content_disposition(
                "attachment", f"organisation-export-{export_id}.zip"
            ),
            "Cache-Control": "no-store",
        },
    )


async def _chunks(file: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
            yield chunk
    finally:
        file.close()
