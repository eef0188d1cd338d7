"""The plan PostgreSQL keeps for a statement a connection has prepared: its generic plan,
made once for any parameters, which a connection keeps while the tables change under it
until their statistics change (so one made while they were small outlives their size);
and how many plans a connection made of a statement, kept or made anew for a run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


class Scan(NamedTuple):
    node: str  # "Index Scan", "Seq Scan", ...
    relation: str
    index: str | None


def scans(plan: Mapping[str, Any]) -> list[Scan]:
    """Every scan of a plan of EXPLAIN (FORMAT JSON) (not what a write names)."""
    found = []
    if "Relation Name" in plan and plan["Node Type"].endswith("Scan"):
        found.append(Scan(plan["Node Type"], plan["Relation Name"], plan.get("Index Name")))
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


def numbered(statement: str) -> tuple[str, list[str]]:
    """``statement`` with SQLAlchemy's named parameters (``:name``) as PREPARE's ``$n``,
    and the names in their order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return re.sub(r"(?<![:\w]):(\w+)", number, statement), names


class Prepared(NamedTuple):
    """A statement prepared on a connection under ``name``, with its arguments."""

    connection: AsyncConnection
    name: str
    values: str  # SQL literals, in the order of its parameters

    @classmethod
    async def on(
        cls,
        connection: AsyncConnection,
        name: str,
        statement: str,
        arguments: Mapping[str, str],
    ) -> Prepared:
        """``statement`` prepared on ``connection``. ``arguments`` are SQL literals by
        parameter name, NULL for the others."""
        prepared, names = numbered(statement)
        # exec_driver_sql: the statement goes as it is, its $n left to PREPARE.
        await connection.exec_driver_sql(f"PREPARE {name} AS {prepared}".replace("%", "%%"))
        return cls(connection, name, ", ".join(arguments.get(n, "NULL") for n in names))

    async def execute(self) -> None:
        await self.connection.exec_driver_sql(f"EXECUTE {self.name}({self.values})")

    async def plans(self) -> tuple[int, int]:
        """How many generic and custom plans PostgreSQL has made of it so far."""
        made = await self.connection.exec_driver_sql(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            f" WHERE name = '{self.name}'"
        )
        generic, custom = made.one()
        return generic, custom

    async def explain(self) -> dict[str, Any]:
        """EXPLAIN (FORMAT JSON) of its next execution's plan."""
        explained = await self.connection.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) EXECUTE {self.name}({self.values})"
        )
        plan: dict[str, Any] = explained.scalar_one()[0]["Plan"]
        return plan

    async def deallocate(self) -> None:
        await self.connection.exec_driver_sql(f"DEALLOCATE {self.name}")


async def generic_scans(
    session: AsyncSession, statement: str, arguments: Mapping[str, str]
) -> list[Scan]:
    """The scans of ``statement``'s generic plan, prepared in ``session``'s transaction
    (the plan cache mode is set for it alone). ``statement`` has SQLAlchemy's named
    parameters (``:name``); ``arguments`` are SQL literals by name, NULL for the others."""
    connection = await session.connection()
    await session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
    prepared = await Prepared.on(connection, "planned", statement, arguments)
    plan = await prepared.explain()
    await prepared.deallocate()
    return scans(plan)
