"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from cybergine.db.migrate import head_revision
from cybergine.web.access import public
from cybergine.web.deps import DatabaseDep
from cybergine.web.problems import problem

router = APIRouter(tags=["health"])
log = structlog.get_logger(__name__)


Probe = Annotated[None, public("health probes for load balancers and orchestrators")]


@router.get("/healthz", summary="The process is up")
async def healthz(_: Probe) -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and migrated to the code's head revision",
    response_model=None,
    responses={503: {"description": "Stopping, or the database is unreachable or not migrated."}},
)
async def readyz(_: Probe, request: Request, database: DatabaseDep) -> Any:
    if request.app.state.lifecycle.draining:
        # SIGTERM received: still serving, but the load balancer should send no more.
        return problem(503, detail="The server is shutting down.", server="draining")
    expected = head_revision()
    try:
        async with database.engine.connect() as conn:
            migrated = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
            current = (
                await conn.scalar(text("SELECT version_num FROM alembic_version"))
                if migrated
                else None
            )
    except Exception as exc:  # any failure to reach the database means "not ready"
        log.warning("readiness check failed", error=type(exc).__name__)
        return problem(503, detail="The database is not reachable.", database="unreachable")
    if current != expected:
        return problem(
            503,
            detail="The database schema is not at the code's migration head.",
            database="reachable",
            migration=current,
            expected_migration=expected,
        )
    return JSONResponse({"status": "ready", "database": "ok", "migration": current})
