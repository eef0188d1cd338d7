"""Web origins (``scheme://host[:port]``): what an assistant's allowed sites are stored
as, and what a request's Origin header is compared with (``web.clients``)."""

from __future__ import annotations

from urllib.parse import urlsplit


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


def https_link(value: object, *, max_length: int) -> str | None:
    """``value`` stripped, when it is an https:// address of a host that people may be
    sent to (no credentials, no spaces, at most ``max_length`` characters); else None."""
    text = value.strip() if isinstance(value, str) else ""
    origin = origin_of(text)  # None too for what does not parse
    if (
        origin is None
        or not origin.startswith("https://")
        or "@" in urlsplit(text).netloc
        or len(text) > max_length
        or any(ch.isspace() for ch in text)
    ):
        return None
    return text
