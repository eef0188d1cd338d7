"""/api/v1/catalog: the organisation's products (in the shape of Shopify's REST Admin
product resource), their collections, and the catalogue as Shopify's product CSV."""

from __future__ import annotations

import io
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from cybergine import pagination
from cybergine.accounts.auth import Authorized, Caller, authorize, authorize_outside_transaction
from cybergine.accounts.permissions import Permission
from cybergine.catalog import service, transfer
from cybergine.catalog.models import ProductStatus
from cybergine.catalog.schemas import (
    CollectionOut,
    ImportOut,
    ImportRowError,
    ProductEnvelope,
    ProductFields,
    ProductOut,
    ProductPage,
)
from cybergine.catalog.shape import read_product
from cybergine.errors import Conflict, CybergineError, InvalidInput
from cybergine.web.deps import SettingsDep
from cybergine.web.downloads import content_disposition
from cybergine.web.openapi import may_answer

router = APIRouter(prefix="/api/v1/catalog", tags=["catalog"])

Reader = Annotated[Caller, authorize(Permission.CONFIGURATION_READ)]
Editor = Annotated[Caller, authorize(Permission.CONFIGURATION_MANAGE)]
# The import reads its upload before its transaction starts.
EditorOutsideTransaction = Annotated[
    Authorized, authorize_outside_transaction(Permission.CONFIGURATION_MANAGE)
]


class UploadTooLarge(CybergineError):
    status = 413
    type_slug = "upload-too-large"
    title = "File too large"


ProductBody = ProductEnvelope | ProductFields


def _fields(body: ProductEnvelope | ProductFields) -> ProductFields:
    return body.product if isinstance(body, ProductEnvelope) else body


_UPSERT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The product with this external_id, updated"},
    **may_answer(Conflict),
}


@router.get("/products", response_model=ProductPage)
async def list_products(
    caller: Reader,
    q: Annotated[str | None, Query(max_length=service.MAX_QUERY_LENGTH)] = None,
    status: ProductStatus | None = None,
    collection: Annotated[str | None, Query(max_length=255, description="a handle")] = None,
    cursor: Annotated[str | None, Query(max_length=pagination.MAX_LENGTH)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = service.PAGE_SIZE,
) -> ProductPage:
    page = await service.list_products(
        caller.scope, q=q, status=status, collection=collection, cursor=cursor, limit=limit
    )
    return ProductPage(
        products=[ProductOut.of(p) for p in page.products], next_cursor=page.next_cursor
    )


@router.post(
    "/products",
    response_model=ProductOut,
    status_code=status.HTTP_201_CREATED,
    responses=_UPSERT_RESPONSES,
    summary="Add a product, or update the one with its external_id (Shopify's `id`)",
)
async def create_product(body: ProductBody, caller: Editor, response: Response) -> ProductOut:
    draft = read_product(_fields(body).model_dump(mode="json", exclude_unset=True))
    product, created = await service.upsert_product(caller.scope, caller.principal, draft)
    if not created:
        response.status_code = status.HTTP_200_OK
    return ProductOut.of(product)


@router.get("/products/{product_id}", response_model=ProductOut)
async def get_product(product_id: uuid.UUID, caller: Reader) -> ProductOut:
    return ProductOut.of(await service.get_product(caller.scope, product_id))


@router.put("/products/{product_id}", response_model=ProductOut, responses=may_answer(Conflict))
async def replace_product(product_id: uuid.UUID, body: ProductBody, caller: Editor) -> ProductOut:
    draft = read_product(_fields(body).model_dump(mode="json", exclude_unset=True))
    product = await service.update_product(caller.scope, caller.principal, product_id, draft)
    return ProductOut.of(product)


@router.delete("/products/{product_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_product(product_id: uuid.UUID, caller: Editor) -> Response:
    await service.delete_product(caller.scope, caller.principal, product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/collections", response_model=list[CollectionOut])
async def list_collections(caller: Reader) -> list[CollectionOut]:
    return [CollectionOut.of(c) for c in await service.list_collections(caller.scope)]


_IMPORT_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "Handle,Title,Option1 Name,Option1 Value,Variant Price\n"
                "tee,Tee,Size,S,10.00\ntee,,,M,10.00",
            }
        },
    }
}


async def _read_limited(request: Request, max_bytes: int) -> bytes:
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
    summary="Import products from Shopify's product CSV",
    description="One row per variant or image; the rows of a product share its Handle. A "
    "product whose Shopify id or handle exists is updated. A product with a bad row is "
    "reported (row, column, message) and the others are written.",
)
async def import_products(
    request: Request, editor: EditorOutsideTransaction, settings: SettingsDep
) -> ImportOut:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in {"text/csv", "application/csv"}:
        raise InvalidInput("Send the product CSV as text/csv.")
    data = await _read_limited(request, settings.max_upload_bytes)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "This file is not UTF-8 text. Save it as CSV UTF-8 and import it again.", field="file"
        ) from exc
    async with editor.transaction() as caller:
        report = await transfer.import_csv(
            caller.scope, caller.principal, io.StringIO(text, newline="")
        )
    return ImportOut(
        created=report.created,
        updated=report.updated,
        error_count=report.errors.count,
        errors=[
            ImportRowError(row=e.row, field=e.field, message=e.message)
            for e in report.errors.errors
        ],
    )


@router.get(
    "/export.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "Shopify's product CSV"}},
)
async def export_products(caller: Reader) -> Response:
    text = "".join([chunk async for chunk in transfer.export_csv(caller.scope)])
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": content_disposition("attachment", "products_export.csv")},
    )
