"""The knowledge base in the dashboard: collections, documents with their indexing status
(the list refreshes itself while something is queued or indexing), uploads of one or
more files, and a document's own page (rename, move, re-index, download, delete).

Q&A pairs and imports are in ``knowledge_qa_pages.py``. Uploads and re-indexing read a
file's text in an extraction process with no database connection held, as the API's
routes do (``knowledge/api.py``); each file is then written in a transaction of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import UploadFile

from cybergine import pagination
from cybergine.accounts.auth import Authorized, Caller, authorize, authorize_outside_transaction
from cybergine.accounts.permissions import Permission
from cybergine.dashboard.forms import fields
from cybergine.dashboard.templating import redirect, render, render_page
from cybergine.errors import CybergineError, InvalidInput
from cybergine.knowledge import listing, service
from cybergine.knowledge.extraction_process import ExtractionBusy
from cybergine.knowledge.extraction_share import ExtractionShares, ExtractionShareUsed
from cybergine.knowledge.models import ItemKind, ItemStatus
from cybergine.knowledge.providers import extraction_processes
from cybergine.settings import Settings
from cybergine.web import hygiene
from cybergine.web.deps import SettingsDep
from cybergine.web.downloads import content_disposition

router = APIRouter(include_in_schema=False)

Reader = Annotated[Caller, authorize(Permission.CONFIGURATION_READ)]
Editor = Annotated[Caller, authorize(Permission.CONFIGURATION_MANAGE)]
EditorOutsideTransaction = Annotated[
    Authorized, authorize_outside_transaction(Permission.CONFIGURATION_MANAGE)
]

MAX_FILES = 20  # per upload; the page sends files one by one, a plain form all at once
ACCEPTED_TYPES = ".pdf,.docx,.html,.htm,.md,.markdown,.txt,.text"
STATUS_LABELS = {
    ItemStatus.PENDING: "Queued",
    ItemStatus.PROCESSING: "Indexing",
    ItemStatus.READY: "Ready",
    ItemStatus.FAILED: "Failed",
}
TYPE_LABELS = {
    "pdf": "PDF",
    "docx": "Word",
    "html": "HTML",
    "markdown": "Markdown",
    "text": "Text",
}

CollectionQuery = Annotated[str, Query(max_length=40)]
CursorQuery = Annotated[str, Query(max_length=pagination.MAX_LENGTH)]


def readable_error(error: str | None) -> str | None:
    """An indexing failure is stored as ``ExceptionName: message``; the owner needs the
    message."""
    if not error:
        return error
    name, separator, message = error.partition(": ")
    if separator and name.isidentifier() and message.strip():
        return message
    return error


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


# Shared by both knowledge modules' templates.
HELPERS = {
    "status_labels": STATUS_LABELS,
    "type_labels": TYPE_LABELS,
    "readable_error": readable_error,
    "human_size": human_size,
}


def collection_filter(value: str) -> uuid.UUID | None:
    """The collection chosen in a list's filter (an id), or None for all of them."""
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidInput("Choose one of the collections offered.", field="collection") from exc


# --- The page -------------------------------------------------------------------------


async def _documents_context(caller: Caller, collection: str, cursor: str) -> dict[str, Any]:
    chosen = collection_filter(collection)
    documents = await listing.documents(caller.scope, collection_id=chosen, cursor=cursor or None)
    query = f"?collection={collection}" if collection else ""
    return {
        "documents": documents,
        "chosen_collection": collection,
        "documents_url": "/knowledge/documents"
        + (f"{query}{'&' if query else '?'}cursor={cursor}" if cursor else query),
        "next_url": f"/knowledge{query}{'&' if query else '?'}cursor={documents.next_cursor}"
        if documents.next_cursor
        else None,
        "first_url": f"/knowledge{query}" if cursor else None,
        "can_edit": caller.principal.can(Permission.CONFIGURATION_MANAGE),
        **HELPERS,
    }


@dataclass(frozen=True)
class UploadResult:
    filename: str
    accepted: bool
    reason: str | None = None
    document_id: uuid.UUID | None = None


async def _knowledge_page(
    request: Request,
    caller: Caller,
    *,
    collection: str = "",
    cursor: str = "",
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    collections = await listing.collections(caller.scope)
    context = await _documents_context(caller, collection, cursor)
    return await render_page(
        request,
        "knowledge.html",
        caller,
        {
            **context,
            "collections": collections,
            "collection_names": {c.id: c.name for c in collections},
            "accepted_types": ACCEPTED_TYPES,
            "max_upload_bytes": request.app.state.settings.max_upload_bytes,
            "max_files": MAX_FILES,
            "upload_results": [],
            "upload_error": None,
            "new_collection": "",
            "collection_error": None,
            **extra,
        },
        status_code=status_code,
    )


@router.get("/knowledge", response_class=HTMLResponse)
async def knowledge_page(
    request: Request, caller: Reader, collection: CollectionQuery = "", cursor: CursorQuery = ""
) -> HTMLResponse:
    return await _knowledge_page(request, caller, collection=collection, cursor=cursor)


@router.get("/knowledge/documents", response_class=HTMLResponse)
async def documents_part(
    request: Request, caller: Reader, collection: CollectionQuery = "", cursor: CursorQuery = ""
) -> HTMLResponse:
    """The list alone: the page asks for it every two seconds while a document is queued
    or indexing, and after each upload."""
    context = await _documents_context(caller, collection, cursor)
    names = {c.id: c.name for c in await service.list_collections(caller.scope)}
    return render(
        request,
        "knowledge_documents.html",
        {**context, "collection_names": names},
        caller=caller,
    )


# --- Collections ----------------------------------------------------------------------


@router.post("/knowledge/collections")
async def create_collection(request: Request, caller: Editor) -> Response:
    form = await fields(request, "name")
    try:
        async with caller.session.begin_nested():
            await service.create_collection(caller.scope, form["name"])
    except CybergineError as exc:
        return await _knowledge_page(
            request,
            caller,
            new_collection=form["name"],
            collection_error=exc.detail,
            status_code=422,
        )
    return redirect("/knowledge", notice="collection-created")


@router.post("/knowledge/collections/{collection_id}/delete")
async def delete_collection(collection_id: uuid.UUID, caller: Editor) -> Response:
    await service.delete_collection(caller.scope, caller.principal, collection_id)
    return redirect("/knowledge", notice="collection-deleted")


# --- Uploads --------------------------------------------------------------------------


async def _accept(
    editor: Authorized, settings: Settings, upload: UploadFile, collection: str | None
) -> UploadResult:
    """One file: read, checked, its text extracted (no connection held), then written."""
    filename = upload.filename or "upload"
    try:
        hygiene.refuse_unstorable({"filename": filename})
        max_bytes = settings.max_upload_bytes
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise InvalidInput(
                f"This file is larger than {human_size(max_bytes)}, the largest accepted."
            )
        extracted = await extraction_processes(settings).extract(
            data, filename=filename, declared_type=upload.content_type
        )
        async with editor.transaction() as caller:
            item = await service.upload_document(
                caller.scope,
                data=data,
                filename=filename,
                declared_type=upload.content_type,
                extracted=extracted,
                collection=collection,
            )
            document_id = item.id
    except CybergineError as exc:
        return UploadResult(filename, accepted=False, reason=exc.detail)
    return UploadResult(filename, accepted=True, document_id=document_id)


def _with_browser(request: Request, caller: Caller) -> Caller:
    """A caller of ``Authorized.transaction`` with the browser session its check found
    (kept on the request): a page rendered for it carries the session's CSRF token."""
    return replace(caller, signed_in=getattr(request.state, "signed_in", None))


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


@router.post("/knowledge/upload")
async def upload(
    request: Request, editor: EditorOutsideTransaction, settings: SettingsDep
) -> Response:
    """A plain form sends every file at once; the page's script sends them one by one
    (for a progress bar each) and asks for JSON. Either way the organisation's turn with
    the file readers comes first, before the body is read (``extraction_share``)."""
    shares: ExtractionShares = request.app.state.extraction_shares
    try:
        async with shares.admitted(editor.principal.organisation_id):
            return await _upload(request, editor, settings)
    except (ExtractionShareUsed, ExtractionBusy) as refused:
        # Said on the page (and to the script, which waits and sends the file again).
        wait = str(refused.extra.get("retry_after", 5))
        if _wants_json(request):
            return JSONResponse(
                {"error": refused.detail, "results": []},
                status_code=refused.status,
                headers={"retry-after": wait},
            )
        async with editor.transaction() as caller:
            page = await _knowledge_page(
                request,
                _with_browser(request, caller),
                upload_results=[],
                upload_error=refused.detail,
                status_code=refused.status,
            )
        page.headers["retry-after"] = wait
        return page


async def _upload(request: Request, editor: Authorized, settings: Settings) -> Response:
    form = await request.form(max_files=MAX_FILES, max_fields=10)
    uploads = [value for value in form.getlist("file") if isinstance(value, UploadFile)]
    raw_collection = form.get("collection")
    collection = raw_collection if isinstance(raw_collection, str) and raw_collection else None
    results: list[UploadResult] = []
    error: str | None = None
    uploads = [u for u in uploads if u.filename or u.size]  # an empty file input sends one
    if not uploads:
        error = "Choose one or more files to upload."
    elif len(uploads) > MAX_FILES:
        error = f"Upload at most {MAX_FILES} files at a time."
    else:
        for each in uploads:
            results.append(await _accept(editor, settings, each, collection))
    if _wants_json(request):
        return JSONResponse(
            {
                "error": error,
                "results": [
                    {
                        "filename": r.filename,
                        "accepted": r.accepted,
                        "reason": r.reason,
                        "url": f"/knowledge/documents/{r.document_id}" if r.document_id else None,
                    }
                    for r in results
                ],
            },
            status_code=200 if results and all(r.accepted for r in results) else 422,
        )
    if error is None and all(r.accepted for r in results):
        return redirect("/knowledge", notice="uploaded")
    async with editor.transaction() as caller:
        return await _knowledge_page(
            request,
            _with_browser(request, caller),
            upload_results=results,
            upload_error=error,
            status_code=422,
        )


# --- One document ---------------------------------------------------------------------


async def _document_page(
    request: Request,
    caller: Caller,
    document_id: uuid.UUID,
    *,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    detail = await listing.document_detail(caller.scope, document_id)
    return await render_page(
        request,
        "knowledge_document.html",
        caller,
        {
            "detail": detail,
            "document": detail.row,
            "collections": await service.list_collections(caller.scope),
            "can_edit": caller.principal.can(Permission.CONFIGURATION_MANAGE),
            "form": {"title": detail.row.title, "collection": detail.collection},
            "errors": {},
            **HELPERS,
            **extra,
        },
        status_code=status_code,
    )


@router.get("/knowledge/documents/{document_id}", response_class=HTMLResponse)
async def document_page(request: Request, document_id: uuid.UUID, caller: Reader) -> HTMLResponse:
    return await _document_page(request, caller, document_id)


@router.get("/knowledge/documents/{document_id}/status", response_class=HTMLResponse)
async def document_status(request: Request, document_id: uuid.UUID, caller: Reader) -> HTMLResponse:
    """The status panel alone, asked for every two seconds until indexing settles."""
    detail = await listing.document_detail(caller.scope, document_id)
    return render(
        request,
        "knowledge_document_status.html",
        {"detail": detail, "document": detail.row, **HELPERS},
        caller=caller,
    )


@router.post("/knowledge/documents/{document_id}")
async def save_document(request: Request, document_id: uuid.UUID, caller: Editor) -> Response:
    form = await fields(request, "title", "collection")
    changes = service.ItemChanges(
        title=form["title"],
        collection=form["collection"] or None,
        fields_set={"title", "collection"},
    )
    try:
        async with caller.session.begin_nested():
            item = await service.get_item(caller.scope, document_id, ItemKind.DOCUMENT)
            if len(form["title"].strip()) > 500:
                raise InvalidInput("A title has at most 500 characters.", field="title")
            if item.title == form["title"].strip():
                changes.title = None  # the same title: no need to index again
            await service.update_item(caller.scope, document_id, ItemKind.DOCUMENT, changes)
    except CybergineError as exc:
        if exc.status == 404:
            raise
        field_name = exc.extra.get("field", "title")
        return await _document_page(
            request,
            caller,
            document_id,
            form=form,
            errors={field_name if field_name in form else "title": exc.detail},
            status_code=422,
        )
    return redirect(f"/knowledge/documents/{document_id}", notice="document-saved")


@router.post("/knowledge/documents/{document_id}/reindex")
async def reindex_document(
    request: Request,
    document_id: uuid.UUID,
    editor: EditorOutsideTransaction,
    settings: SettingsDep,
) -> Response:
    async with editor.transaction() as caller:
        stored = await service.original_file(caller.scope, document_id)
        original = (stored.data, stored.filename, stored.declared_type) if stored else None
    try:
        extracted = None
        if original is not None:
            data, filename, declared_type = original
            shares: ExtractionShares = request.app.state.extraction_shares
            async with shares.admitted(editor.principal.organisation_id):
                extracted = await extraction_processes(settings).extract(
                    data, filename=filename, declared_type=declared_type
                )
        async with editor.transaction() as caller:
            await service.reprocess(caller.scope, document_id, extracted)
    except CybergineError as exc:
        if exc.status == 404:
            raise
        async with editor.transaction() as caller:
            return await _document_page(
                request,
                _with_browser(request, caller),
                document_id,
                error=exc.detail,
                status_code=exc.status,
            )
    return redirect(f"/knowledge/documents/{document_id}", notice="reindexing")


@router.post("/knowledge/documents/{document_id}/delete")
async def delete_document(document_id: uuid.UUID, caller: Editor) -> Response:
    await service.delete_item(caller.scope, document_id, ItemKind.DOCUMENT)
    return redirect("/knowledge", notice="document-deleted")


@router.get("/knowledge/documents/{document_id}/file")
async def download_original(document_id: uuid.UUID, caller: Reader) -> Response:
    stored = await service.get_file(caller.scope, document_id)
    return Response(
        content=stored.data,
        media_type="application/octet-stream",
        headers={
            "content-disposition": content_disposition("attachment", stored.filename),
            "cache-control": "private, no-store",
        },
    )
