"""Domain errors. Each carries its HTTP status and a stable problem type, so the web
layer renders it once as RFC 9457 problem+json and the dashboard as a message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class CybergineError(Exception):
    status: ClassVar[int] = 400
    type_slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    # Response headers an error of this kind always carries (e.g. a rejected Shopify
    # session token asks App Bridge to retry with a fresh one).
    headers: ClassVar[Mapping[str, str]] = {}

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(CybergineError):
    """Also what another organisation's object looks like: existence never leaks."""

    status = 404
    type_slug = "not-found"
    title = "Not found"


class Unauthorized(CybergineError):
    status = 401
    type_slug = "unauthorized"
    title = "Unauthorized"


class Forbidden(CybergineError):
    status = 403
    type_slug = "forbidden"
    title = "Forbidden"


class Conflict(CybergineError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class TooManyRequests(CybergineError):
    status = 429
    type_slug = "too-many-requests"
    title = "Too many requests"


class InvalidInput(CybergineError):
    status = 422
    type_slug = "invalid-input"
    title = "Invalid input"


class PayloadTooLarge(CybergineError):
    status = 413
    type_slug = "payload-too-large"
    title = "Request body too large"
