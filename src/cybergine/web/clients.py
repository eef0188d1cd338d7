"""Who is on the other end of a request: its client address and the origin it comes from."""

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
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"
