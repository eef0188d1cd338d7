"""/api/v1/channels/whatsapp: an organisation's WhatsApp business numbers.

Connecting a number (or giving it a new access token) asks Meta whether the token can use
it before anything is saved; that call is made with no transaction open, between a short
one that checks what the database can and the one that writes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response, status

from cybergine.accounts.auth import Authorized, Caller, authorize, authorize_outside_transaction
from cybergine.accounts.permissions import Permission
from cybergine.channels.whatsapp import service
from cybergine.channels.whatsapp.ingest import NumberDirectory
from cybergine.channels.whatsapp.schemas import NumberIn, NumberOut, NumberUpdate
from cybergine.channels.whatsapp.service import WhatsAppUnreachable
from cybergine.errors import Conflict
from cybergine.web.deps import SettingsDep
from cybergine.web.openapi import may_answer

router = APIRouter(prefix="/api/v1/channels/whatsapp", tags=["whatsapp"])

Reader = Annotated[Caller, authorize(Permission.CONFIGURATION_READ)]
Editor = Annotated[Caller, authorize(Permission.CONFIGURATION_MANAGE)]
EditorOutsideTransaction = Annotated[
    Authorized, authorize_outside_transaction(Permission.CONFIGURATION_MANAGE)
]


def forget_number(request: Request, phone_number_id: str) -> None:
    """Drops the number from this process's webhook routing cache, so a change applies to
    the next delivery (other processes pick it up within the cache's few seconds)."""
    directory: NumberDirectory | None = getattr(request.app.state, "whatsapp_numbers", None)
    if directory is not None:
        directory.forget(phone_number_id)


@router.post(
    "",
    response_model=NumberOut,
    status_code=status.HTTP_201_CREATED,
    responses=may_answer(Conflict, WhatsAppUnreachable),
)
async def create_number(
    body: NumberIn, editor: EditorOutsideTransaction, settings: SettingsDep, request: Request
) -> NumberOut:
    changes = body.changes()
    async with editor.transaction() as caller:
        await service.check_new_number(caller.scope, changes)
    await service.check_credentials(
        settings.whatsapp_graph_url, body.phone_number_id, body.access_token
    )
    async with editor.transaction() as caller:
        number = await service.create_number(caller.scope, caller.principal, changes)
        created = NumberOut.of(number, public_url=settings.public_url)
    forget_number(request, created.phone_number_id)  # it may be cached as unknown
    return created


@router.get("", response_model=list[NumberOut])
async def list_numbers(caller: Reader, settings: SettingsDep) -> list[NumberOut]:
    return [
        NumberOut.of(n, public_url=settings.public_url)
        for n in await service.list_numbers(caller.scope)
    ]


@router.get("/{number_id}", response_model=NumberOut)
async def get_number(number_id: uuid.UUID, caller: Reader, settings: SettingsDep) -> NumberOut:
    number = await service.get_number(caller.scope, number_id)
    return NumberOut.of(number, public_url=settings.public_url)


@router.patch("/{number_id}", response_model=NumberOut, responses=may_answer(WhatsAppUnreachable))
async def update_number(
    number_id: uuid.UUID,
    body: NumberUpdate,
    editor: EditorOutsideTransaction,
    settings: SettingsDep,
    request: Request,
) -> NumberOut:
    if body.access_token is not None:  # a new token is checked with Meta, like a new number
        async with editor.transaction() as caller:
            phone_number_id = (await service.get_number(caller.scope, number_id)).phone_number_id
        await service.check_credentials(
            settings.whatsapp_graph_url, phone_number_id, body.access_token
        )
    async with editor.transaction() as caller:
        number = await service.update_number(
            caller.scope, caller.principal, number_id, body.changes()
        )
        updated = NumberOut.of(number, public_url=settings.public_url)
    forget_number(request, updated.phone_number_id)
    return updated


@router.delete("/{number_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_number(number_id: uuid.UUID, caller: Editor, request: Request) -> Response:
    phone_number_id = await service.delete_number(caller.scope, caller.principal, number_id)
    forget_number(request, phone_number_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
