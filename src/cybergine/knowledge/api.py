"""/api/v1/knowledge: documents (JSON text or an uploaded file), Q&A pairs, collections,
and search."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import ValidationError

from cybergine.accounts.auth import (
    Authorized,
    Caller,
    authorize,
    authorize_outside_transaction,
)
from cybergine.accounts.permissions import Permission
from cybergine.errors import Conflict, CybergineError, InvalidInput, NotFound
from cybergine.knowledge import imports, service
from cybergine.knowledge import search as retrieval
from cybergine.knowledge.extract import ExtractedDocument
from cybergine.knowledge.extract.errors import DocumentTooLarge
from cybergine.knowledge.extraction_process import ExtractionBusy
from cybergine.knowledge.extraction_share import ExtractionShares, ExtractionShareUsed
from cybergine.knowledge.models import Item, ItemKind, ItemStatus
from cybergine.knowledge.providers import embedding_provider, extraction_processes
from cybergine.knowledge.schemas import (
    CollectionIn,
    CollectionOut,
    ComponentOut,
    DocumentIn,
    DocumentOut,
    DocumentPage,
    DocumentUpdate,
    ExplainOut,
    GroundingOut,
    ImportOut,
    ImportRowError,
    QaIn,
    QaOut,
    QaPage,
    QaUpdate,
    SearchExplainOut,
    SearchIn,
    SearchOut,
    SearchResult,
    WeightsOut,
)
from cybergine.settings import Settings
from cybergine.web import hygiene
from cybergine.web.deps import SettingsDep
from cybergine.web.downloads import content_disposition
from cybergine.web.openapi import may_answer

router = APIRouter(prefix="/api/v1/knowledge", tags=["knowledge"])

Reader = Annotated[Caller, authorize(Permission.CONFIGURATION_READ)]
Editor = Annotated[Caller, authorize(Permission.CONFIGURATION_MANAGE)]
# For routes that extract a file's text: no connection is held while that runs.
EditorOutsideTransaction = Annotated[
    Authorized, authorize_outside_transaction(Permission.CONFIGURATION_MANAGE)
]


class UploadTooLarge(CybergineError):
    status = 413
    type_slug = "upload-too-large"
    title = "File too large"


async def _collection_name(caller: Caller, item: Item) -> str:
    names = {c.id: c.name for c in await service.list_collections(caller.scope)}
    return names.get(item.collection_id, "")


def _validation_problem(exc: ValidationError) -> InvalidInput:
    errors = [
        {"location": [str(p) for p in e["loc"]], "message": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
    return InvalidInput("The request did not match the expected shape.", errors=errors)


_UPLOAD_DOC = {
    "requestBody": {
        "content": {
            "application/json": {"schema": DocumentIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string"},
                        "external_id": {"type": "string"},
                        "collection": {"type": "string"},
                        "metadata": {"type": "string", "description": "a JSON object"},
                    },
                }
            },
        }
    }
}


@router.post(
    "/documents",
    response_model=DocumentOut,
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=_UPLOAD_DOC,
    responses=may_answer(Conflict, UploadTooLarge, ExtractionBusy, ExtractionShareUsed),
    summary="Add a document from JSON text or an uploaded file (PDF, DOCX, HTML, Markdown, text)",
)
async def create_document(
    request: Request, editor: EditorOutsideTransaction, settings: SettingsDep
) -> DocumentOut:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _upload(request, editor, settings)
    if not content_type.startswith("application/json"):
        raise InvalidInput("Send JSON (application/json) or a file (multipart/form-data).")
    try:
        body = DocumentIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise _validation_problem(exc) from exc
    async with editor.transaction() as caller:
        item = await service.create_document(
            caller.scope,
            title=body.title,
            body=body.text,
            external_id=body.external_id,
            collection=body.collection,
            metadata=body.metadata,
        )
        return DocumentOut.of(item, await _collection_name(caller, item))


@dataclass(frozen=True)
class _ReadUpload:
    data: bytes
    filename: str
    declared_type: str | None
    extracted: ExtractedDocument
    title: str | None
    external_id: str | None
    collection: str | None
    metadata: dict[str, Any] | None


async def read_upload(request: Request, settings: Settings) -> _ReadUpload:
    """The uploaded file, its form fields checked and its text extracted in a reader
    process; no database connection is held while this runs."""
    max_bytes = settings.max_upload_bytes
    form = await request.form(max_files=1, max_fields=10)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidInput("Attach the document as the form field `file`.", field="file")
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UploadTooLarge(f"Files are limited to {max_bytes} bytes.")

    # The edge checks JSON and urlencoded bodies; a multipart form's text is checked here.
    filename = upload.filename or "upload"
    hygiene.refuse_unstorable(
        {"filename": filename}
        | {name: value for name, value in form.multi_items() if isinstance(value, str)}
    )

    def text_field(name: str) -> str | None:
        value = form.get(name)
        return value if isinstance(value, str) and value.strip() else None

    metadata: dict[str, Any] | None = None
    if raw := text_field("metadata"):
        try:
            metadata = hygiene.loads(raw, what="`metadata`")
        except hygiene.MalformedJson as exc:
            raise InvalidInput("`metadata` must be a JSON object.", field="metadata") from exc
        if not isinstance(metadata, dict):
            raise InvalidInput("`metadata` must be a JSON object.", field="metadata")
        hygiene.refuse_unstorable({"metadata": metadata})
    extracted = await extraction_processes(settings).extract(
        data, filename=filename, declared_type=upload.content_type
    )
    return _ReadUpload(
        data=data,
        filename=filename,
        declared_type=upload.content_type,
        extracted=extracted,
        title=text_field("title"),
        external_id=text_field("external_id"),
        collection=text_field("collection"),
        metadata=metadata,
    )


async def _upload(request: Request, editor: Authorized, settings: Settings) -> DocumentOut:
    """The organisation's turn with the readers comes before its body is read
    (``extraction_share``); then one transaction writes the document."""
    shares: ExtractionShares = request.app.state.extraction_shares
    async with shares.admitted(editor.principal.organisation_id):
        read = await read_upload(request, settings)
    async with editor.transaction() as caller:
        item = await service.upload_document(
            caller.scope,
            data=read.data,
            filename=read.filename,
            declared_type=read.declared_type,
            extracted=read.extracted,
            title=read.title,
            external_id=read.external_id,
            collection=read.collection,
            metadata=read.metadata,
        )
        return DocumentOut.of(item, await _collection_name(caller, item))


@dataclass(frozen=True)
class ListFilters:
    external_id: str | None
    collection: str | None
    status: ItemStatus | None
    limit: int
    cursor: str | None


def _list_filters(
    external_id: Annotated[str | None, Query(max_length=200)] = None,
    collection: Annotated[str | None, Query(max_length=100)] = None,
    status_: Annotated[ItemStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> ListFilters:
    return ListFilters(external_id, collection, status_, limit, cursor)


Filters = Annotated[ListFilters, Depends(_list_filters)]


async def _page(caller: Caller, kind: ItemKind, filters: ListFilters) -> service.Page:
    return await service.list_items(
        caller.scope,
        kind,
        external_id=filters.external_id,
        collection=filters.collection,
        status=filters.status,
        limit=filters.limit,
        cursor=filters.cursor,
    )


@router.get("/documents", response_model=DocumentPage)
async def list_documents(caller: Reader, filters: Filters) -> DocumentPage:
    page = await _page(caller, ItemKind.DOCUMENT, filters)
    return DocumentPage(
        items=[DocumentOut.of(i, page.collections.get(i.collection_id, "")) for i in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/documents/{document_id}", response_model=DocumentOut)
async def get_document(document_id: uuid.UUID, caller: Reader) -> DocumentOut:
    item = await service.get_item(caller.scope, document_id, ItemKind.DOCUMENT)
    return DocumentOut.of(item, await _collection_name(caller, item))


@router.get(
    "/documents/{document_id}/file",
    summary="Download the original file",
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_document(document_id: uuid.UUID, caller: Reader) -> Response:
    stored = await service.get_file(caller.scope, document_id)
    return Response(
        content=stored.data,
        media_type="application/octet-stream",
        headers={"content-disposition": content_disposition("attachment", stored.filename)},
    )


@router.patch(
    "/documents/{document_id}", response_model=DocumentOut, responses=may_answer(Conflict)
)
async def update_document(
    document_id: uuid.UUID, body: DocumentUpdate, caller: Editor
) -> DocumentOut:
    changes = service.ItemChanges(
        title=body.title,
        body=body.text,
        external_id=body.external_id,
        collection=body.collection,
        metadata=body.metadata,
        fields_set=set(body.model_fields_set),
    )
    item = await service.update_item(caller.scope, document_id, ItemKind.DOCUMENT, changes)
    return DocumentOut.of(item, await _collection_name(caller, item))


@router.post(
    "/documents/{document_id}/reindex",
    response_model=DocumentOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=may_answer(DocumentTooLarge, ExtractionBusy),
)
async def reindex_document(
    document_id: uuid.UUID, editor: EditorOutsideTransaction, settings: SettingsDep
) -> DocumentOut:
    # Read the original, extract its text with no transaction open, then write.
    async with editor.transaction() as caller:
        stored = await service.original_file(caller.scope, document_id)
    extracted = None
    if stored is not None:
        extracted = await extraction_processes(settings).extract(
            stored.data, filename=stored.filename, declared_type=stored.declared_type
        )
    async with editor.transaction() as caller:
        item = await service.reprocess(caller.scope, document_id, extracted)
        return DocumentOut.of(item, await _collection_name(caller, item))


@router.delete("/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_document(document_id: uuid.UUID, caller: Editor) -> Response:
    await service.delete_item(caller.scope, document_id, ItemKind.DOCUMENT)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/qa",
    response_model=QaOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=may_answer(Conflict),
)
async def create_qa(body: QaIn, caller: Editor) -> QaOut:
    item = await service.create_qa(
        caller.scope,
        question=body.question,
        answer=body.answer,
        alternatives=body.alternatives,
        external_id=body.external_id,
        collection=body.collection,
        metadata=body.metadata,
    )
    return QaOut.of(item, await _collection_name(caller, item))


@router.get("/qa", response_model=QaPage)
async def list_qa(caller: Reader, filters: Filters) -> QaPage:
    page = await _page(caller, ItemKind.QA, filters)
    return QaPage(
        items=[QaOut.of(i, page.collections.get(i.collection_id, "")) for i in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/qa/{qa_id}", response_model=QaOut)
async def get_qa(qa_id: uuid.UUID, caller: Reader) -> QaOut:
    item = await service.get_item(caller.scope, qa_id, ItemKind.QA)
    return QaOut.of(item, await _collection_name(caller, item))


@router.patch("/qa/{qa_id}", response_model=QaOut, responses=may_answer(Conflict))
async def update_qa(qa_id: uuid.UUID, body: QaUpdate, caller: Editor) -> QaOut:
    changes = service.ItemChanges(
        question=body.question,
        body=body.answer,
        alternatives=body.alternatives,
        external_id=body.external_id,
        collection=body.collection,
        metadata=body.metadata,
        fields_set=set(body.model_fields_set),
    )
    item = await service.update_item(caller.scope, qa_id, ItemKind.QA, changes)
    return QaOut.of(item, await _collection_name(caller, item))


@router.delete("/qa/{qa_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_qa(qa_id: uuid.UUID, caller: Editor) -> Response:
    await service.delete_item(caller.scope, qa_id, ItemKind.QA)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/collections", response_model=list[CollectionOut])
async def list_collections(caller: Reader) -> list[CollectionOut]:
    return [
        CollectionOut(id=c.id, name=c.name) for c in await service.list_collections(caller.scope)
    ]


@router.post(
    "/collections",
    response_model=CollectionOut,
    status_code=status.HTTP_201_CREATED,
    responses=may_answer(Conflict),
)
async def create_collection(body: CollectionIn, caller: Editor) -> CollectionOut:
    created = await service.create_collection(caller.scope, body.name)
    return CollectionOut(id=created.id, name=created.name)


_IMPORT_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {
                "schema": {"type": "string"},
                "example": '{"question": "Do you ship abroad?", "answer": "Yes, to the EU."}',
            },
            "text/csv": {
                "schema": {"type": "string"},
                "example": "question,answer,alternatives\nDo you ship abroad?,Yes.,Ship to Spain?",
            },
        },
    }
}


async def read_limited(request: Request, max_bytes: int) -> bytes:
    """The body, refused as soon as it passes ``max_bytes``."""
    received = bytearray()
    async for piece in request.stream():
        received += piece
        if len(received) > max_bytes:
            raise UploadTooLarge(f"Files are limited to {max_bytes} bytes.")
    return bytes(received)


@router.post(
    "/import",
    response_model=ImportOut,
    openapi_extra=_IMPORT_DOC,
    responses=may_answer(UploadTooLarge),
    summary="Import Q&A pairs and text documents from JSON Lines or CSV",
    description="One item a row: `question`, `answer`, `alternatives` (a Q&A pair) or "
    "`title`, `text` (a document), with optional `collection` and `external_id` (a row "
    "whose external_id exists updates that item). Bad rows are reported by line; the "
    "others are written.",
)
async def import_items(
    request: Request,
    caller: Editor,
    settings: SettingsDep,
    collection: Annotated[str | None, Query(max_length=100)] = None,
) -> ImportOut:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("text/csv", "application/x-ndjson", "application/jsonl")):
        raise InvalidInput("Send the rows as text/csv or application/x-ndjson.")
    data = await read_limited(request, settings.max_upload_bytes)
    report = await imports.import_items(
        caller.scope,
        data,
        file_format=imports.format_of(None, content_type),
        collection=collection or None,
    )
    return ImportOut(
        created=report.created,
        updated=report.updated,
        error_count=report.error_count,
        errors=[ImportRowError(line=e.line, message=e.message) for e in report.errors],
    )


@router.delete("/collections/{collection_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_collection(collection_id: uuid.UUID, caller: Editor) -> Response:
    await service.delete_collection(caller.scope, caller.principal, collection_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/search", response_model=SearchOut, responses=may_answer(NotFound))
async def search(body: SearchIn, caller: Reader, settings: SettingsDep) -> SearchOut:
    provider = embedding_provider(settings)
    hits = await service.search_knowledge(
        caller.scope,
        query=body.query,
        k=body.k,
        collections=[body.collection] if body.collection else None,
        assistant_id=body.assistant_id,
        metadata=body.metadata,
        provider=provider,
    )
    return SearchOut(
        results=[
            SearchResult(
                chunk_id=hit.chunk_id,
                document_id=hit.item_id,
                external_id=hit.external_id,
                title=hit.title,
                text=hit.text,
                score=hit.score,
                kind="qa" if hit.kind == "qa" else "document",
                explain=_explained(hit) if body.explain else None,
            )
            for hit in hits
        ],
        explain=SearchExplainOut(
            dense_search=provider is not None,
            weights=WeightsOut(
                dense=retrieval.DEFAULT_WEIGHTS.dense, lexical=retrieval.DEFAULT_WEIGHTS.lexical
            ),
            grounding=GroundingOut(
                min_similarity=retrieval.MIN_SIMILARITY, min_bm25=retrieval.MIN_BM25
            ),
        )
        if body.explain
        else None,
    )


def _component(component: retrieval.Component) -> ComponentOut:
    return ComponentOut(
        rank=component.rank, score=component.score, contribution=component.contribution
    )


def _explained(hit: retrieval.Hit) -> ExplainOut:
    return ExplainOut(
        lexical=_component(hit.lexical),
        dense=_component(hit.dense) if hit.dense else None,
        grounded=hit.grounded,
    )
