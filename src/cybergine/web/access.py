"""Marks on route dependencies that say how a route is protected.

Every route carries exactly one: ``cybergine.accounts.auth.authorize(permission)``, or
``public(reason)`` for the few that need no caller. ``tests/accounts/test_route_protection.py``
walks the router and fails for a route with neither.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends

PERMISSION_ATTRIBUTE = "__cybergine_permission__"


def public(reason: str) -> Any:
    """A route anyone may call (sign-in pages, webhooks, health probes)."""

    async def dependency() -> None:
        return None

    setattr(dependency, PERMISSION_ATTRIBUTE, f"public: {reason}")
    return Depends(dependency)
