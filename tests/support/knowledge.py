"""Helpers for knowledge-base tests: run the indexing jobs, search through the API."""

from __future__ import annotations

from typing import Any

import httpx

from cybergine.db.engine import Database
from cybergine.jobs import Worker
from cybergine.settings import Settings


async def run_jobs(database: Database, settings: Settings) -> None:
    """Run every job that is due, then return (as a worker would, once)."""
    await Worker(database, settings=settings, concurrency=2).run(
        wait=False, install_signal_handlers=False
    )


def search(api: httpx.Client, query: str, **options: Any) -> list[dict[str, Any]]:
    response = api.post("/api/v1/knowledge/search", json={"query": query, **options})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results
