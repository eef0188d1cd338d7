"""An organisation with the known history of ``known.py``, its aggregates refreshed, and
an API client with a viewer's key (the least role that may read analytics)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cybergine.accounts.models import Role
from cybergine.analytics import rollups
from cybergine.db.engine import Database
from tests.analytics import known
from tests.support.factories import make_api_key, make_organisation
from tests.support.server import LiveServer


@dataclass
class Seeded:
    known: known.Known
    api: httpx.Client

    def period(self, **extra: Any) -> dict[str, Any]:
        return {"from": self.known.first.isoformat(), "to": self.known.last.isoformat(), **extra}


def measure() -> rollups.Measure:
    return rollups.Measure(now=datetime.now(UTC), idle=timedelta(hours=known.IDLE_HOURS))


async def refresh(database: Database, seeded: known.Known) -> int:
    async with database.transaction() as session:
        return await rollups.refresh(session, seeded.organisation_id, measure())


@pytest.fixture
async def seeded(live_server: LiveServer, database: Database) -> AsyncIterator[Seeded]:
    organisation, _ = await make_organisation(database, name="Known history")
    async with database.transaction() as session:
        history = await known.seed(session, organisation.id, datetime.now(UTC))
    await refresh(database, history)
    key = await make_api_key(database, organisation.id, Role.VIEWER)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as client:
        yield Seeded(history, client)
