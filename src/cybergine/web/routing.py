"""Listing every route an app serves, for the checks that walk the router (route
protection, tenant isolation)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute


def iter_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """Routes, with included routers flattened.

    Recent FastAPI keeps an included router as one entry that points at the original
    router (``original_router``) instead of copying its routes in; older versions copy.
    Both shapes are walked.
    """
    for route in routes:
        original: Any = getattr(route, "original_router", None)
        if original is not None:
            yield from iter_routes(original.routes)
        else:
            yield route


def api_routes(routes: Sequence[BaseRoute]) -> list[APIRoute]:
    return [route for route in iter_routes(routes) if isinstance(route, APIRoute)]
