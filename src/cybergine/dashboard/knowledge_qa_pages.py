"""Q&A pairs in the dashboard: the list (with its indexing status, refreshed while a pair
is queued), adding and editing a pair (question, alternative phrasings one per line,
answer, collection), deleting one, and importing many from a JSON Lines or CSV file
with a report of the rows refused (``knowledge/imports.py``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile

from cybergine import pagination
from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.analytics import gaps
from cybergine.dashboard.knowledge_pages import HELPERS, collection_filter, human_size
from cybergine.dashboard.templating import redirect, render, render_page
from cybergine.errors import CybergineError, InvalidInput
from cybergine.knowledge import imports, listing, service
from cybergine.knowledge.models import ItemKind
from cybergine.web.deps import SettingsDep

router = APIRouter(include_in_schema=False)

Reader = Annotated[Caller, authorize(Permission.CONFIGURATION_READ)]
Editor = Annotated[Caller, authorize(Permission.CONFIGURATION_MANAGE)]

FORM_FIELDS = ("question", "alternatives", "answer", "collection")
MAX_ANSWER = 20_000  # a form field; the API takes longer answers
CollectionQuery = Annotated[str, Query(max_length=40)]
CursorQuery = Annotated[str, Query(max_length=pagination.MAX_LENGTH)]


def _empty_form() -> dict[str, str]:
    return dict.fromkeys(FORM_FIELDS, "") | {"collection": service.DEFAULT_COLLECTION}


def _field_of(error: CybergineError) -> str:
    named = error.extra.get("field")
    return named if named in FORM_FIELDS else "question"


async def _rows_context(caller: Caller, collection: str, cursor: str) -> dict[str, Any]:
    chosen = collection_filter(collection)
    pairs = await listing.qa_pairs(caller.scope, collection_id=chosen, cursor=cursor or None)
    query = f"?collection={collection}" if collection else ""
    joiner = "&" if query else "?"
    return {
        "pairs": pairs,
        "chosen_collection": collection,
        "rows_url": "/knowledge/qa/rows" + (f"{query}{joiner}cursor={cursor}" if cursor else query),
        "next_url": f"/knowledge/qa{query}{joiner}cursor={pairs.next_cursor}"
        if pairs.next_cursor
        else None,
        "first_url": f"/knowledge/qa{query}" if cursor else None,
        "can_edit": caller.principal.can(Permission.CONFIGURATION_MANAGE),
        **HELPERS,
    }


async def _qa_page(
    request: Request,
    caller: Caller,
    *,
    collection: str = "",
    cursor: str = "",
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    collections = await listing.collections(caller.scope)
    return await render_page(
        request,
        "knowledge_qa.html",
        caller,
        {
            **await _rows_context(caller, collection, cursor),
            "collections": collections,
            "collection_names": {c.id: c.name for c in collections},
            "form": _empty_form(),
            "errors": {},
            "report": None,
            "import_error": None,
            "max_upload_bytes": request.app.state.settings.max_upload_bytes,
            "max_rows": imports.MAX_ROWS,
            **extra,
        },
        status_code=status_code,
    )


@router.get("/knowledge/qa", response_class=HTMLResponse)
async def qa_page(
    request: Request,
    caller: Reader,
    collection: CollectionQuery = "",
    cursor: CursorQuery = "",
    question: Annotated[str, Query(max_length=5000)] = "",
    gap: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    """``question`` and ``gap``: the form pre-filled from the knowledge gaps page, whose
    group the pair answers once written."""
    if question or gap:
        form = _empty_form() | {"question": question, "gap": gap}
        return await _qa_page(request, caller, collection=collection, cursor=cursor, form=form)
    return await _qa_page(request, caller, collection=collection, cursor=cursor)


@router.get("/knowledge/qa/rows", response_class=HTMLResponse)
async def qa_rows(
    request: Request, caller: Reader, collection: CollectionQuery = "", cursor: CursorQuery = ""
) -> HTMLResponse:
    """The list alone, asked for every two seconds while a pair is queued or indexing."""
    names = {c.id: c.name for c in await service.list_collections(caller.scope)}
    context = await _rows_context(caller, collection, cursor)
    return render(
        request, "knowledge_qa_rows.html", {**context, "collection_names": names}, caller=caller
    )


def _alternatives(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _check_answer(answer: str) -> None:
    if len(answer) > MAX_ANSWER:
        raise InvalidInput(f"An answer here has at most {MAX_ANSWER:,} characters.", field="answer")


async def _read_form(request: Request) -> dict[str, str]:
    form = await request.form()
    values: dict[str, str] = {}
    for name in FORM_FIELDS:
        value = form.get(name)
        values[name] = value if isinstance(value, str) else ""
    gap = form.get("gap")
    values["gap"] = gap if isinstance(gap, str) else ""
    return values


def _gap_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


@router.post("/knowledge/qa")
async def create_qa(request: Request, caller: Editor) -> Response:
    form = await _read_form(request)
    try:
        async with caller.session.begin_nested():
            _check_answer(form["answer"])
            item = await service.create_qa(
                caller.scope,
                question=form["question"],
                answer=form["answer"],
                alternatives=_alternatives(form["alternatives"]),
                collection=form["collection"] or None,
            )
            # Written from the knowledge gaps page: the pair answers that group.
            if (gap := _gap_id(form["gap"])) is not None:
                await gaps.mark_answered(caller.scope, gap, item.id)
    except CybergineError as exc:
        return await _qa_page(
            request, caller, form=form, errors={_field_of(exc): exc.detail}, status_code=422
        )
    return redirect("/knowledge/qa", notice="qa-added")


@router.post("/knowledge/qa/import")
async def import_qa(request: Request, caller: Editor, settings: SettingsDep) -> Response:
    """From the page's script (HTMX, with a progress bar) only the report comes back;
    a plain form gets the whole page with it."""
    form = await request.form(max_files=1, max_fields=5)
    upload = form.get("file")
    raw_collection = form.get("collection")
    collection = raw_collection if isinstance(raw_collection, str) and raw_collection else None
    report: imports.ImportReport | None = None
    error: str | None = None
    try:
        if not isinstance(upload, UploadFile) or not (upload.filename or upload.size):
            raise InvalidInput("Choose a .jsonl or .csv file to import.", field="file")
        max_bytes = settings.max_upload_bytes
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise InvalidInput(
                f"This file is larger than {human_size(max_bytes)}; split it into smaller ones.",
                field="file",
            )
        async with caller.session.begin_nested():
            report = await imports.import_items(
                caller.scope,
                data,
                file_format=imports.format_of(upload.filename, upload.content_type),
                collection=collection,
            )
    except CybergineError as exc:
        error = exc.detail
    written = report is not None and (report.created or report.updated)
    status_code = 200 if written else 422
    context = {"report": report, "import_error": error}
    if request.headers.get("hx-request"):
        response = render(
            request, "knowledge_import_report.html", context, caller=caller, status_code=status_code
        )
        if written:
            response.headers["hx-trigger"] = "knowledge-refresh"
        return response
    return await _qa_page(
        request, caller, report=report, import_error=error, status_code=status_code
    )


async def _edit_page(
    request: Request,
    caller: Caller,
    qa_id: uuid.UUID,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    item = await service.get_item(caller.scope, qa_id, ItemKind.QA)
    collections = await service.list_collections(caller.scope)
    names = {c.id: c.name for c in collections}
    return await render_page(
        request,
        "knowledge_qa_edit.html",
        caller,
        {
            "pair": item,
            "collection": names.get(item.collection_id, ""),
            "collections": collections,
            "can_edit": caller.principal.can(Permission.CONFIGURATION_MANAGE),
            "form": form
            or {
                "question": item.question or "",
                "alternatives": "\n".join(item.alternatives),
                "answer": item.body,
                "collection": names.get(item.collection_id, ""),
            },
            "errors": errors or {},
            **HELPERS,
        },
        status_code=status_code,
    )


@router.get("/knowledge/qa/{qa_id}", response_class=HTMLResponse)
async def edit_page(request: Request, qa_id: uuid.UUID, caller: Reader) -> HTMLResponse:
    return await _edit_page(request, caller, qa_id)


@router.post("/knowledge/qa/{qa_id}")
async def save_qa(request: Request, qa_id: uuid.UUID, caller: Editor) -> Response:
    form = await _read_form(request)
    try:
        async with caller.session.begin_nested():
            item = await service.get_item(caller.scope, qa_id, ItemKind.QA)
            _check_answer(form["answer"])
            alternatives = _alternatives(form["alternatives"])
            unchanged = (
                item.question == form["question"].strip()
                and item.body == form["answer"].strip()
                and item.alternatives == [a.strip() for a in alternatives]
            )
            # Only what changed: the same text is not indexed again.
            changes = service.ItemChanges(collection=form["collection"] or None)
            if not unchanged:
                changes.question = form["question"]
                changes.body = form["answer"]
                changes.alternatives = alternatives
            await service.update_item(caller.scope, qa_id, ItemKind.QA, changes)
    except CybergineError as exc:
        if exc.status == 404:
            raise
        return await _edit_page(
            request,
            caller,
            qa_id,
            form=form,
            errors={_field_of(exc): exc.detail},
            status_code=422,
        )
    return redirect("/knowledge/qa", notice="qa-saved")


@router.post("/knowledge/qa/{qa_id}/delete")
async def delete_qa(qa_id: uuid.UUID, caller: Editor) -> Response:
    await service.delete_item(caller.scope, qa_id, ItemKind.QA)
    return redirect("/knowledge/qa", notice="qa-deleted")
