"""Who is on the other end of a request: its client address and the origin it comes from,
and whether that origin may read the answer (CORS)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection


def client_ip(connection: HTTPConnection) -> str:
    """The client's address, as ``web.proxies`` decided it (forwarded headers count only
    from a trusted proxy)."""
    return connection.client.host if connection.client else "unknown"


def origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` of a URL or Origin header, lower-cased; None if not one."""
    if not url:
        return None
    try:
        # Headers are the client's to write: ``http://[::1``, ``https://x:99999`` or
        # ``h:abc`` make these raise, and such an origin is simply not one.
        parts = urlsplit(url.strip())
        hostname, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not hostname:
        return None
    return f"{parts.scheme}://{hostname.lower()}{f':{port}' if port else ''}"


def grant_origin(connection: HTTPConnection, origin: str | None) -> None:
    """Let ``origin`` read this request's answer, errors included (None: no one may);
    decided by the route, which knows which origins its data is for."""
    connection.state.cors_origin = origin


def granted_origin(connection: HTTPConnection) -> str | None:
    origin: str | None = getattr(connection.state, "cors_origin", None)
    return origin
