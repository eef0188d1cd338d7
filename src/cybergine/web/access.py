"""Marks on route dependencies that say how a route is protected.

Every route carries exactly one: ``cybergine.accounts.auth.authorize(permission)``, or
``public(reason)`` for the few that need no caller. ``tests/accounts/test_route_protection.py``
walks the router and fails for a route with neither.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from fastapi.dependencies.models import Dependant

PERMISSION_ATTRIBUTE = "__cybergine_permission__"
# Set by ``authorize`` on a permission an organisation scheduled for deletion no longer
# has for its unsafe methods (answered 423: ``accounts.grace``).
GRACE_REFUSAL_ATTRIBUTE = "__cybergine_refused_during_deletion_grace__"
PUBLIC_MARK = "public: "
# The methods that change something: CSRF-checked, and refused to a closing organisation.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def public(reason: str) -> Any:
    """A route anyone may call (sign-in pages, webhooks, health probes)."""

    async def dependency() -> None:
        return None

    setattr(dependency, PERMISSION_ATTRIBUTE, PUBLIC_MARK + reason)
    return Depends(dependency)


def marks(dependant: Dependant) -> list[Any]:
    """The protection marks among a route's dependencies, however deeply nested (a
    well-declared route has exactly one)."""
    found = []
    for dependency in dependant.dependencies:
        mark = getattr(dependency.call, PERMISSION_ATTRIBUTE, None)
        if mark is not None:
            found.append(mark)
        found.extend(marks(dependency))
    return found


def refused_during_deletion_grace(dependant: Dependant) -> bool:
    """Whether the route's unsafe methods are refused while its organisation is closing."""
    return any(
        getattr(dependency.call, GRACE_REFUSAL_ATTRIBUTE, False)
        or refused_during_deletion_grace(dependency)
        for dependency in dependant.dependencies
    )


def is_public(dependant: Dependant) -> bool:
    return any(isinstance(mark, str) and mark.startswith(PUBLIC_MARK) for mark in marks(dependant))
