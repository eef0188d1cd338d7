"""The plan PostgreSQL keeps for a statement a connection has prepared: its generic plan,
made once for any parameters, which a connection keeps while the tables change under it
until their statistics change (so one made while they were small outlives their size)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


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


async def generic_scans(
    session: AsyncSession, statement: str, arguments: Mapping[str, str]
) -> list[Scan]:
    """The scans of ``statement``'s generic plan, prepared in ``session``'s transaction
    (the plan cache mode is set for it alone). ``statement`` has SQLAlchemy's named
    parameters (``:name``); ``arguments`` are SQL literals by name, NULL for the others."""
    names: list[str] = []

    def numbered(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    prepared = re.sub(r"(?<![:\w]):(\w+)", numbered, statement)
    connection = await session.connection()
    await session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
    # exec_driver_sql: the statement goes as it is, its $n left to PREPARE.
    await connection.exec_driver_sql(f"PREPARE planned AS {prepared}".replace("%", "%%"))
    values = ", ".join(arguments.get(name, "NULL") for name in names)
    explained = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) EXECUTE planned({values})")
    plan = explained.scalar_one()
    await connection.exec_driver_sql("DEALLOCATE planned")
    return scans(plan[0]["Plan"])
