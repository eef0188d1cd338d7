"""Reaching tenant data: only through a scope bound to one organisation.

Routes and services get a ``TenantScope`` from the caller's credentials (never from the
request body), and every read starts from ``scope.select(Model)``, which already carries
the organisation filter. ``get`` answers ``NotFound`` both for a missing id and for
another organisation's id, so existence never leaks.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.db.base import Base, TenantMixin
from cybergine.errors import NotFound

T = TypeVar("T", bound=Base)


class TenantScope:
    def __init__(self, session: AsyncSession, organisation_id: uuid.UUID) -> None:
        self.session = session
        self.organisation_id = organisation_id

    def select(self, model: type[T]) -> Select[T]:
        _require_tenant_model(model)
        column: Any = model.organisation_id  # type: ignore[attr-defined]
        return select(model).where(column == self.organisation_id)

    async def find(self, model: type[T], id: uuid.UUID, *, for_update: bool = False) -> T | None:
        statement = self.select(model).where(model.id == id)
        if for_update:
            statement = statement.with_for_update()
        result = await self.session.execute(statement)
        return result.scalar_one_or_none()

    async def get(
        self,
        model: type[T],
        id: uuid.UUID,
        *,
        for_update: bool = False,
        what: str | None = None,
    ) -> T:
        found = await self.find(model, id, for_update=for_update)
        if found is None:
            raise NotFound(f"No such {what or model.__name__.lower()}.")
        return found

    async def count(self, statement: Select[Any]) -> int:
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        return int(total or 0)

    def add(self, obj: T) -> T:
        _require_tenant_model(type(obj))
        obj.organisation_id = self.organisation_id  # type: ignore[attr-defined]
        self.session.add(obj)
        return obj

    async def delete(self, obj: T) -> None:
        if getattr(obj, "organisation_id", None) != self.organisation_id:
            raise NotFound("No such object.")
        await self.session.delete(obj)


def _require_tenant_model(model: type[Base]) -> None:
    if not issubclass(model, TenantMixin):
        raise TypeError(f"{model.__name__} is not a tenant-owned model")
