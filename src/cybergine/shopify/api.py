"""``POST /webhooks/shopify``: every webhook Shopify sends the app (the topic in
``X-Shopify-Topic``), verified by its HMAC and acknowledged once stored
(``shopify.webhooks``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cybergine.errors import PayloadTooLarge
from cybergine.shopify import webhooks
from cybergine.shopify.signing import InvalidSignature
from cybergine.web.access import public
from cybergine.web.deps import DatabaseDep, SettingsDep
from cybergine.web.openapi import may_answer

webhook_router = APIRouter(prefix="/webhooks/shopify", tags=["webhooks"])

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
