"""``POST /webhooks/shopify``: every webhook Shopify sends the app (the topic in
``X-Shopify-Topic``), verified by its HMAC and acknowledged once stored
(``shopify.webhooks``); ``/api/v1/shopify/sync``: where the sync from the organisation's
shop stands, and "Sync now" (``shopify.sync_status``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.errors import NotFound, PayloadTooLarge
from cybergine.observability.metrics import metered_webhook
from cybergine.shopify import sync_status, webhooks
from cybergine.shopify.signing import InvalidSignature
from cybergine.web.access import public
from cybergine.web.deps import DatabaseDep, SettingsDep
from cybergine.web.openapi import may_answer

webhook_router = APIRouter(prefix="/webhooks/shopify", tags=["webhooks"])
sync_router = APIRouter(prefix="/api/v1/shopify", tags=["shopify"])

Shopify = Annotated[
    None, public("Shopify calls it; deliveries are authenticated by their HMAC signature")
]

_TOO_LARGE = "A Shopify webhook body is at most 5 MB."


@webhook_router.post(
    "",
    responses=may_answer(webhooks.MalformedWebhook, InvalidSignature, PayloadTooLarge),
    # Read raw (the HMAC covers the exact bytes), so FastAPI cannot infer it.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
@metered_webhook("shopify")
async def receive(
    _: Shopify, request: Request, database: DatabaseDep, settings: SettingsDep
) -> JSONResponse:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > webhooks.MAX_BODY_BYTES:
        raise PayloadTooLarge(_TOO_LARGE)
    raw = await request.body()
    if len(raw) > webhooks.MAX_BODY_BYTES:
        raise PayloadTooLarge(_TOO_LARGE)
    # Verified before anything is read from it, and before a connection is taken.
    webhooks.verify(raw, request.headers, webhooks.webhook_secrets(settings))
    headers = webhooks.read_headers(request.headers)
    payload = webhooks.read_payload(raw, headers)
    async with database.transaction() as session:
        receipt = await webhooks.store(session, headers, payload)
    return JSONResponse({"status": receipt.value})


# --- The sync from the shop ------------------------------------------------------------

Reader = Annotated[Caller, authorize(Permission.CONFIGURATION_READ)]
Editor = Annotated[Caller, authorize(Permission.CONFIGURATION_MANAGE)]


class RunError(BaseModel):
    line: int | None = None
    product: str | None = None
    error: str


class SyncRunOut(BaseModel):
    id: str
    kind: str
    status: str
    requested_at: str | None
    started_at: str | None
    finished_at: str | None
    object_count: int | None
    lines_applied: int
    products_written: int
    products_failed: int
    products_deleted: int
    documents_written: int
    documents_removed: int
    error: str | None
    errors: list[RunError]


class SyncStatusOut(BaseModel):
    shop: str
    connected: bool
    products: int
    running: bool
    latest: SyncRunOut | None
    last_completed: SyncRunOut | None


def _out(found: dict[str, Any]) -> SyncStatusOut:
    return SyncStatusOut.model_validate(found)


@sync_router.get("/sync", response_model=SyncStatusOut, responses=may_answer(NotFound))
async def get_sync_status(caller: Reader) -> SyncStatusOut:
    shop = await sync_status.shop_of(caller.scope.session, caller.scope.organisation_id)
    if shop is None:
        raise NotFound("This organisation has no connected Shopify shop.")
    return _out(await sync_status.sync_status(caller.scope.session, shop))


@sync_router.post(
    "/sync",
    response_model=SyncRunOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=may_answer(NotFound),
)
async def request_sync(caller: Editor) -> SyncRunOut:
    """A full sync (catalogue and content) of the shop, or the one already under way."""
    run = await sync_status.request_now(
        caller.scope.session, caller.scope.organisation_id, caller.principal.actor
    )
    return SyncRunOut.model_validate(sync_status.describe(run))
