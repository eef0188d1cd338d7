"""``/webhooks/whatsapp``: Meta's subscription check and its event deliveries.

A delivery is acknowledged as soon as what it carries is committed (events, messages,
status changes and the jobs that act on them, in one transaction): Meta retries an
unacknowledged delivery for days, so the answer must be quick and the work deferred.
Authentication is the body's ``X-Hub-Signature-256``, computed over the raw bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import select

from cybergine.channels.whatsapp.batcher import IngestBatcher
from cybergine.channels.whatsapp.health import HealthStamps
from cybergine.channels.whatsapp.ingest import (
    NumberDirectory,
    delivery_items,
    phone_number_ids,
    store_delivery,
    verified_routes,
)
from cybergine.channels.whatsapp.models import PHONE_NUMBER_ID_LENGTH, WhatsAppNumber
from cybergine.channels.whatsapp.payloads import PayloadError, check_envelope
from cybergine.channels.whatsapp.signature import HEADER, verify_signature
from cybergine.errors import CybergineError, Forbidden, PayloadTooLarge, Unauthorized
from cybergine.observability.metrics import metered_webhook
from cybergine.web.access import public
from cybergine.web.deps import DatabaseDep, SettingsDep
from cybergine.web.openapi import may_answer

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/webhooks/whatsapp", tags=["webhooks"])

Meta = Annotated[None, public("Meta calls it; deliveries are authenticated by their signature")]

# Meta's deliveries are small (a few KB); its documented maximum payload is 3 MB.
MAX_BODY_BYTES = 3 * 1024 * 1024


class MalformedWebhook(CybergineError):
    type_slug = "malformed-webhook"
    title = "Malformed webhook"


def directory(request: Request) -> NumberDirectory:
    found: NumberDirectory | None = getattr(request.app.state, "whatsapp_numbers", None)
    if found is None:
        settings = request.app.state.settings
        secret = settings.whatsapp_app_secret
        found = NumberDirectory(
            request.app.state.database,
            default_app_secret=secret.get_secret_value() if secret else None,
        )
        request.app.state.whatsapp_numbers = found
    return found


def health_stamps(request: Request) -> HealthStamps:
    found: HealthStamps | None = getattr(request.app.state, "whatsapp_health", None)
    if found is None:
        found = request.app.state.whatsapp_health = HealthStamps(request.app.state.database)
    return found


@router.get("", response_class=PlainTextResponse, responses=may_answer(Forbidden))
async def verify_subscription(
    _: Meta,
    database: DatabaseDep,
    settings: SettingsDep,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge", max_length=200)] = None,
) -> PlainTextResponse:
    if mode != "subscribe" or not token or challenge is None:
        raise Forbidden("Not a subscription request for this webhook.")
    default = settings.whatsapp_verify_token
    matches = default is not None and hmac.compare_digest(
        token.encode(), default.get_secret_value().encode()
    )
    if not matches:
        digest = hashlib.sha256(token.encode()).hexdigest()
        async with database.transaction() as session:
            matches = (
                await session.scalar(
                    select(WhatsAppNumber.id)
                    .where(WhatsAppNumber.verify_token_sha256 == digest)
                    .limit(1)
                )
            ) is not None
    if not matches:
        raise Forbidden("The verify token does not match.")
    return PlainTextResponse(challenge)


@router.post(
    "",
    responses=may_answer(MalformedWebhook, Unauthorized, PayloadTooLarge),
    # Read raw (the signature covers the exact bytes), so FastAPI cannot infer it.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
@metered_webhook("whatsapp")
async def receive(_: Meta, request: Request, database: DatabaseDep) -> Response:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge("A WhatsApp webhook body is at most 3 MB.")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge("A WhatsApp webhook body is at most 3 MB.")
    try:
        body: Any = json.loads(raw)
        check_envelope(body)  # refuses what is not a WhatsApp Business Account webhook
    except (ValueError, PayloadError) as error:
        raise MalformedWebhook(f"The body is not a WhatsApp webhook: {error}") from None

    signature = request.headers.get(HEADER)
    numbers = directory(request)
    named = phone_number_ids(body)
    routes = await numbers.lookup(named)
    if not routes:
        default = numbers.default_app_secret
        if default is not None and not verify_signature(raw, signature, default):
            raise Unauthorized("The X-Hub-Signature-256 signature does not match.")
        # Possibly unsigned (no default secret): a few, cut short, never the whole body.
        log.warning(
            "whatsapp.webhook.unknown_numbers",
            count=len(named),
            numbers=[n[:PHONE_NUMBER_ID_LENGTH] for n in sorted(named)[:5]],
        )
        return JSONResponse({"status": "ignored"})

    accepted = verified_routes(routes, raw, signature)
    stamps = health_stamps(request)
    refused = [route.id for key, route in routes.items() if key not in accepted]
    if refused:
        await stamps.refused(refused)  # shown on the number's page: a wrong app secret
    if not accepted:
        raise Unauthorized("The X-Hub-Signature-256 signature does not match.")
    closing = sorted(key for key, route in accepted.items() if not route.accepting)
    if closing:
        # Their organisation waits for its erasure and takes no new messages (policy §11):
        # acknowledged, or Meta would retry for days, but nothing is stored, not even the
        # raw event: it would only hold the words of customers nobody will answer, to be
        # erased with the organisation. Not remembered either: a cancelled deletion
        # takes effect with the next delivery.
        log.info("whatsapp.webhook.organisation_closing", numbers=closing)
        accepted = {key: route for key, route in accepted.items() if route.accepting}
        if not accepted:
            return JSONResponse({"status": "ignored"})
    numbers.remember(accepted)
    await stamps.received(route.id for route in accepted.values())
    if len(accepted) + len(closing) < len(routes):
        log.warning(
            "whatsapp.webhook.signature_mismatch",
            numbers=sorted(set(routes) - set(accepted) - set(closing)),
        )
    items = delivery_items(body, accepted)
    batcher: IngestBatcher | None = getattr(request.app.state, "whatsapp_batcher", None)
    if items is not None and batcher is not None:
        await batcher.submit(items)
    else:
        async with database.transaction() as session:
            result = await store_delivery(session, body, accepted)
        if result.duplicates:
            log.info("whatsapp.webhook.duplicates", count=result.duplicates)
    return JSONResponse({"status": "received"})
