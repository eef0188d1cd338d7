"""The product catalogue in the dashboard: the list with search and filters, a product's
page, the import of Shopify's product CSV with its per-row report, and the export.

Every page calls the catalogue's own functions (``catalog.service``, ``catalog.transfer``),
the same ones ``/api/v1/catalog`` calls."""

from __future__ import annotations

import io
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile

from cybergine import pagination
from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.catalog import service, transfer
from cybergine.catalog.models import ProductStatus
from cybergine.dashboard.knowledge_pages import human_size
from cybergine.dashboard.templating import redirect, render_page
from cybergine.errors import CybergineError, InvalidInput
from cybergine.shopify import sync_status
from cybergine.web.deps import SettingsDep
from cybergine.web.downloads import content_disposition

router = APIRouter(include_in_schema=False)

Reader = Annotated[Caller, authorize(Permission.CONFIGURATION_READ)]
Editor = Annotated[Caller, authorize(Permission.CONFIGURATION_MANAGE)]

STATUS_LABELS = {
    ProductStatus.ACTIVE: "Active",
    ProductStatus.DRAFT: "Draft",
    ProductStatus.ARCHIVED: "Archived",
}


def _status(value: str) -> ProductStatus | None:
    if not value:
        return None
    try:
        return ProductStatus(value)
    except ValueError as exc:
        raise InvalidInput("Choose one of the statuses offered.", field="status") from exc


async def _catalog_page(
    request: Request,
    caller: Caller,
    *,
    q: str = "",
    status: str = "",
    collection: str = "",
    cursor: str = "",
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    page = await service.list_products(
        caller.scope,
        q=q or None,
        status=_status(status),
        collection=collection or None,
        cursor=cursor or None,
    )
    query = {k: v for k, v in (("q", q), ("status", status), ("collection", collection)) if v}
    shop = await sync_status.shop_of(caller.session, caller.scope.organisation_id)
    return await render_page(
        request,
        "catalog.html",
        caller,
        {
            "page": page,
            "q": q,
            "chosen_status": status,
            "chosen_collection": collection,
            "collections": await service.list_collections(caller.scope),
            "status_labels": STATUS_LABELS,
            "can_edit": caller.principal.can(Permission.CONFIGURATION_MANAGE),
            "max_upload": human_size(request.app.state.settings.max_upload_bytes),
            "next_url": f"/catalog?{urlencode({**query, 'cursor': page.next_cursor})}"
            if page.next_cursor
            else None,
            "first_url": ("/catalog" + (f"?{urlencode(query)}" if query else ""))
            if cursor
            else None,
            "report": None,
            "import_error": None,
            "shopify_sync": await sync_status.sync_status(caller.session, shop) if shop else None,
            **extra,
        },
        status_code=status_code,
    )


@router.get("/catalog", response_class=HTMLResponse)
async def catalog_page(
    request: Request,
    caller: Reader,
    q: Annotated[str, Query(max_length=service.MAX_QUERY_LENGTH)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    collection: Annotated[str, Query(max_length=255)] = "",
    cursor: Annotated[str, Query(max_length=pagination.MAX_LENGTH)] = "",
) -> HTMLResponse:
    return await _catalog_page(
        request, caller, q=q, status=status, collection=collection, cursor=cursor
    )


@router.post("/catalog/import", response_class=HTMLResponse)
async def import_products(request: Request, caller: Editor, settings: SettingsDep) -> Response:
    form = await request.form(max_files=1, max_fields=3)
    upload = form.get("file")
    report: transfer.ImportReport | None = None
    error: str | None = None
    try:
        if not isinstance(upload, UploadFile) or not (upload.filename or upload.size):
            raise InvalidInput("Choose a product CSV file to import.", field="file")
        max_bytes = settings.max_upload_bytes
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise InvalidInput(
                f"This file is larger than {human_size(max_bytes)}; split it into smaller ones.",
                field="file",
            )
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                "This file is not UTF-8 text. Save it as CSV UTF-8 and import it again.",
                field="file",
            ) from exc
        async with caller.session.begin_nested():
            report = await transfer.import_csv(
                caller.scope, caller.principal, io.StringIO(text, newline="")
            )
    except CybergineError as exc:
        error = exc.detail
    written = report is not None and (report.created or report.updated)
    return await _catalog_page(
        request,
        caller,
        report=report,
        import_error=error,
        status_code=200 if written else 422,
    )


@router.post("/catalog/shopify-sync")
async def sync_shopify_now(caller: Editor) -> Response:
    """ "Sync now": a full sync of the organisation's Shopify shop (or the one running)."""
    await sync_status.request_now(
        caller.session, caller.scope.organisation_id, caller.principal.actor
    )
    return redirect("/catalog#shopify-sync-heading")


@router.get("/catalog/export.csv")
async def export_products(caller: Reader) -> Response:
    text = "".join([chunk async for chunk in transfer.export_csv(caller.scope)])
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": content_disposition("attachment", "products_export.csv")},
    )


@router.get("/catalog/products/{product_id}", response_class=HTMLResponse)
async def product_page(request: Request, product_id: uuid.UUID, caller: Reader) -> HTMLResponse:
    product = await service.get_product(caller.scope, product_id)
    return await render_page(
        request,
        "catalog_product.html",
        caller,
        {
            "product": product,
            "status_labels": STATUS_LABELS,
            "can_edit": caller.principal.can(Permission.CONFIGURATION_MANAGE),
        },
    )


@router.post("/catalog/products/{product_id}/delete")
async def delete_product(product_id: uuid.UUID, caller: Editor) -> Response:
    await service.delete_product(caller.scope, caller.principal, product_id)
    return redirect("/catalog")
