"""/api/v1/assistants: an organisation's AI assistants."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Response, status

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.assistants import service
from cybergine.assistants.schemas import AssistantIn, AssistantOut, AssistantUpdate
from cybergine.errors import Conflict
from cybergine.llm.endpoints import ChatEndpoints
from cybergine.web.deps import SettingsDep
from cybergine.web.openapi import may_answer

router = APIRouter(prefix="/api/v1/assistants", tags=["assistants"])

Reader = Annotated[Caller, authorize(Permission.CONFIGURATION_READ)]
Editor = Annotated[Caller, authorize(Permission.CONFIGURATION_MANAGE)]


@router.post(
    "",
    response_model=AssistantOut,
    status_code=status.HTTP_201_CREATED,
    responses=may_answer(Conflict),
)
async def create_assistant(
    body: AssistantIn, caller: Editor, settings: SettingsDep
) -> AssistantOut:
    assistant = await service.create_assistant(
        caller.scope, caller.principal, body.changes(), endpoints=ChatEndpoints.of(settings)
    )
    return AssistantOut.of(assistant)


@router.get("", response_model=list[AssistantOut])
async def list_assistants(caller: Reader) -> list[AssistantOut]:
    return [AssistantOut.of(a) for a in await service.list_assistants(caller.scope)]


@router.get("/{assistant_id}", response_model=AssistantOut)
async def get_assistant(assistant_id: uuid.UUID, caller: Reader) -> AssistantOut:
    return AssistantOut.of(await service.get_assistant(caller.scope, assistant_id))


@router.patch("/{assistant_id}", response_model=AssistantOut, responses=may_answer(Conflict))
async def update_assistant(
    assistant_id: uuid.UUID, body: AssistantUpdate, caller: Editor, settings: SettingsDep
) -> AssistantOut:
    assistant = await service.update_assistant(
        caller.scope,
        caller.principal,
        assistant_id,
        body.changes(),
        endpoints=ChatEndpoints.of(settings),
    )
    return AssistantOut.of(assistant)


@router.delete("/{assistant_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_assistant(assistant_id: uuid.UUID, caller: Editor) -> Response:
    await service.delete_assistant(caller.scope, caller.principal, assistant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
