"""The published Shopify signature vectors copied into tests/fixtures/shopify/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parents[1] / "fixtures" / "shopify"


def vectors(name: str) -> list[dict[str, Any]]:
    table: list[dict[str, Any]] = json.loads((FIXTURES / "hmac" / name).read_text("utf-8"))
    return table


def fixture_bytes(relative_path: str) -> bytes:
    return (FIXTURES.parent / relative_path).read_bytes()
