"""The ``Content-Disposition`` of a file the API hands back, whatever its stored name.

HTTP headers are Latin-1 at best, and a name is the uploader's to choose: the header
carries an ASCII fallback (``filename=``) for old clients and the exact name, UTF-8 and
percent-encoded, as ``filename*`` (RFC 6266, RFC 8187), which every current browser and
HTTP library prefers.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote


def content_disposition(
    kind: Literal["attachment", "inline"], filename: str | None, *, unnamed: str = "file"
) -> str:
    """``unnamed``: the name given to a file that has none (or none in ASCII)."""
    name = (filename or "").strip() or unnamed
    ascii_name = "".join(ch for ch in name if ch.isascii() and (ch.isalnum() or ch in "._- "))
    value = f'{kind}; filename="{ascii_name.strip() or unnamed}"'
    if ascii_name != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value
