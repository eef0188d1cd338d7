"""Helpers for knowledge-base tests: search through the API."""

from __future__ import annotations

from typing import Any

import httpx


def search(api: httpx.Client, query: str, **options: Any) -> list[dict[str, Any]]:
    response = api.post("/api/v1/knowledge/search", json={"query": query, **options})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results
