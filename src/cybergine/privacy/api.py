"""/api/v1/customers: finding a customer named in a data-subject request, exporting what
is held about them (JSON, or a signed portable bundle), and erasing it (policy §14); and
the public key that checks a bundle's signature."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.conversations.schemas import CustomerOut
from cybergine.privacy import signing, subjects
from cybergine.privacy.bundle import build_bundle
from cybergine.web.access import public
from cybergine.web.downloads import content_disposition

router = APIRouter(prefix="/api/v1/customers", tags=["privacy"])
well_known = APIRouter(tags=["privacy"])

Officer = Annotated[Caller, authorize(Permission.CUSTOMER_DATA_MANAGE)]


class ErasureOut(BaseModel):
    customer_id: uuid.UUID
    conversations: int
    messages: int
    attachments: int
    webhook_events: int
    conversations_closed: int


@router.get("", response_model=list[CustomerOut])
async def find_customers(
    caller: Officer,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="A part of the name, a phone number in any format, or a channel id",
        ),
    ] = None,
    before: Annotated[
        uuid.UUID | None, Query(description="The last id of the previous page (newest first)")
    ] = None,
    phone_number: Annotated[str | None, Query(max_length=40)] = None,
    external_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[CustomerOut]:
    found = await subjects.find_customers(
        caller.scope,
        query=q or "",
        before=before,
        phone_number=phone_number,
        external_id=external_id,
        limit=limit,
    )
    return [CustomerOut.of(customer) for customer in found]


@router.get("/{customer_id}/export", summary="Everything held about one customer (JSON)")
async def export_customer(customer_id: uuid.UUID, caller: Officer) -> JSONResponse:
    exported: dict[str, Any] = await subjects.export_customer(
        caller.scope, caller.principal, customer_id
    )
    return export_response(exported, customer_id)


def export_response(exported: dict[str, Any], customer_id: uuid.UUID) -> JSONResponse:
    """A customer's export as a JSON download (the API's and the dashboard's)."""
    return JSONResponse(
        exported,
        headers={
            "Content-Disposition": content_disposition(
                "attachment", f"customer-{customer_id}.json"
            ),
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/{customer_id}/export/bundle",
    summary="Everything held about one customer, as a signed, portable ZIP bundle",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
async def export_customer_bundle(customer_id: uuid.UUID, caller: Officer) -> Response:
    """The export as ``customer.json``, the attachments as files, and a manifest of their
    SHA-256 hashes signed by the server (``GET /.well-known/cybergine-signing-key``)."""
    exported = await subjects.export_customer(caller.scope, caller.principal, customer_id)
    return bundle_response(exported, customer_id)


def bundle_response(exported: dict[str, Any], customer_id: uuid.UUID) -> Response:
    """A customer's export as a bundle download (the API's and the dashboard's)."""
    return Response(
        build_bundle(exported),
        media_type="application/zip",
        headers={
            "Content-Disposition": content_disposition("attachment", f"customer-{customer_id}.zip"),
            "Cache-Control": "no-store",
        },
    )


@well_known.get(
    "/.well-known/cybergine-signing-key",
    summary="The public key that checks the signature of export bundles (PEM)",
    response_class=PlainTextResponse,
)
async def signing_key(
    _: Annotated[None, public("a public key: anyone may check an export bundle's signature")],
) -> PlainTextResponse:
    return PlainTextResponse(signing.public_key_pem())


@router.delete("/{customer_id}", response_model=ErasureOut, summary="Erase a customer's data")
async def erase_customer(customer_id: uuid.UUID, caller: Officer) -> ErasureOut:
    erasure = await subjects.erase_customer(caller.scope, caller.principal, customer_id)
    return ErasureOut(**erasure.__dict__)
