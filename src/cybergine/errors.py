"""Domain errors. Each carries its HTTP status and a stable problem type, so the web
layer renders it once as RFC 9457 problem+json and the dashboard as a message."""

from __future__ import annotations

from typing import Any, ClassVar


class CybergineError(Exception):
    status: ClassVar[int] = 400
    type_slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(CybergineError):
    """Also what another organisation's object looks like: existence never leaks."""

    status = 404
    type_slug = "not-found"
    title = "Not found"


class Conflict(CybergineError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class InvalidInput(CybergineError):
    status = 422
    type_slug = "invalid-input"
    title = "Invalid input"
