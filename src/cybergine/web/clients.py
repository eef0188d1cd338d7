"""Who is on the other end of a request: its client address and the origin it comes from,
and whether that origin may read the answer (CORS)."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from cybergine.origins import origin_of

__all__ = ["client_ip", "grant_origin", "granted_origin", "origin_of"]


def client_ip(connection: HTTPConnection) -> str:
    """The client's address, as ``web.proxies`` decided it (forwarded headers count only
    from a trusted proxy)."""
    return connection.client.host if connection.client else "unknown"


def grant_origin(connection: HTTPConnection, origin: str | None) -> None:
    """Let ``origin`` read this request's answer, errors included (None: no one may);
    decided by the route, which knows which origins its data is for."""
    connection.state.cors_origin = origin


def granted_origin(connection: HTTPConnection) -> str | None:
    origin: str | None = getattr(connection.state, "cors_origin", None)
    return origin
