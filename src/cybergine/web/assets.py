"""Serving files that every page (or every shop's page) loads: compressed once, validated
by a strong ETag, cached by browsers for as long as their URL allows.

A file is read and hashed the first time it is linked or asked for, gzipped (in a
thread) the first time it is served, and kept in memory until it changes on disk (its
size and modification time are checked on each request, a ``stat`` costing
microseconds): a change while the server runs, in development, is served at once.
Standard-library gzip only: brotli would need a dependency for a few percent on text
this size.

URLs built by ``url_for`` carry the content's hash (``/static/app.css?v=1a2b3c4d5e6f``):
such an answer can be kept a year and never revalidated (``immutable``), since a new
version has a new URL. A URL without it (bookmarked, or a fixed one such as
``/widget.js``) gets the short lifetime its route chooses, then a revalidation that an
unchanged file answers with an empty 304.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import threading
from pathlib import Path

import anyio
import structlog
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

log = structlog.get_logger(__name__)

VERSION_PARAMETER = "v"
VERSION_LENGTH = 12
IMMUTABLE = "public, max-age=31536000, immutable"
# Unversioned: a browser may reuse its copy only after asking (a 304 costs no body).
REVALIDATE = "public, no-cache"

# Text compresses well; images and fonts are compressed already, or barely shrink.
_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
_MIN_COMPRESSIBLE_BYTES = 256
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/vnd.microsoft.icon",
    ".json": "application/json",
    ".map": "application/json",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}


class Asset:
    """One file's bytes as served: identity, and gzip when that is smaller.

    Compressing waits for the first answer that needs it (``prepare``, in a thread: the
    largest vendored file takes a good part of a second at level 9), so linking a file
    from a template costs only reading and hashing it."""

    def __init__(self, path: Path, stamp: tuple[int, int]) -> None:
        self.stamp = stamp  # (size, mtime_ns) of the file it was read from
        self.body = path.read_bytes()
        self.media_type = _TYPES.get(path.suffix.lower()) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        self.digest = hashlib.sha256(self.body).hexdigest()
        self.compressible = (
            self.media_type.startswith(_COMPRESSIBLE) and len(self.body) >= _MIN_COMPRESSIBLE_BYTES
        )
        self.gzipped: bytes | None = None
        self.prepared = not self.compressible

    @property
    def version(self) -> str:
        return self.digest[:VERSION_LENGTH]

    def etag(self, *, gzipped: bool) -> str:
        # Strong ETags name one representation: the gzipped bytes are another one.
        return f'"{self.digest[:32]}{"-gz" if gzipped else ""}"'

    def compress(self) -> None:
        # mtime=0: the same bytes every time, so the gzipped ETag is stable across restarts.
        candidate = gzip.compress(self.body, compresslevel=9, mtime=0)
        if len(candidate) < len(self.body):
            self.gzipped = candidate
        self.prepared = True

    async def prepare(self) -> Asset:
        """Compressed once, off the event loop; concurrent first requests may both
        compress, and get the same bytes."""
        if not self.prepared:
            await anyio.to_thread.run_sync(self.compress)
        return self


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (``gzip;q=0`` refuses it, as does ``*;q=0``
    when gzip is not named)."""
    if not accept_encoding:
        return False
    wildcard: float | None = None
    for part in accept_encoding.split(","):
        token, _, parameters = part.strip().partition(";")
        quality = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
        coding = token.strip().lower()
        if coding in ("gzip", "x-gzip"):
            return quality > 0
        if coding == "*":
            wildcard = quality
    return wildcard is not None and wildcard > 0


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    # Weak comparison, as RFC 9110 asks for If-None-Match: W/"x" matches "x".
    candidates = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return etag in candidates


def asset_response(
    asset: Asset,
    request_headers: Headers,
    *,
    cache_control: str,
    extra_headers: dict[str, str] | None = None,
) -> Response:
    """The asset as this request should get it: gzipped if asked, 304 if the browser's
    copy is current. The asset was prepared (compressed) already."""
    assert asset.prepared
    use_gzip = asset.gzipped is not None and accepts_gzip(request_headers.get("accept-encoding"))
    etag = asset.etag(gzipped=use_gzip)
    headers = {"ETag": etag, "Cache-Control": cache_control, **(extra_headers or {})}
    if asset.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
    if_none_match = request_headers.get("if-none-match")
    if if_none_match is not None and _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
        assert asset.gzipped is not None
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


class AssetDirectory:
    """A directory of assets: ``url_for`` for templates, and an ASGI app to mount."""

    def __init__(self, directory: Path, *, mount_path: str) -> None:
        self.directory = directory.resolve()
        self.mount_path = mount_path.rstrip("/")
        self._assets: dict[str, Asset] = {}
        self._lock = threading.Lock()

    def _path(self, name: str) -> Path | None:
        """The file ``name`` names inside the directory, or None (nothing outside it,
        no directory, no hidden file)."""
        if not name or "\\" in name or "\x00" in name:
            return None
        parts = name.split("/")
        if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
            return None
        path = self.directory.joinpath(*parts)
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not resolved.is_relative_to(self.directory) or not resolved.is_file():
            return None
        return resolved

    def get(self, name: str) -> Asset | None:
        path = self._path(name)
        if path is None:
            return None
        try:
            info = os.stat(path)
        except OSError:
            return None
        stamp = (info.st_size, info.st_mtime_ns)
        cached = self._assets.get(name)
        if cached is not None and cached.stamp == stamp:
            return cached
        with self._lock:
            cached = self._assets.get(name)
            if cached is None or cached.stamp != stamp:
                cached = self._assets[name] = Asset(path, stamp)
        return cached

    def url_for(self, name: str) -> str:
        """``/static/app.css?v=<hash>``: the URL a template links, cacheable for a year."""
        asset = self.get(name)
        if asset is None:
            # Not a reason to fail the whole page: the link 404s, which the browser
            # tests see as a console error.
            log.warning("static file missing", name=name)
            return f"{self.mount_path}/{name}"
        return f"{self.mount_path}/{name}?{VERSION_PARAMETER}={asset.version}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app mounted at ``mount_path``: GET and HEAD only."""
        assert scope["type"] == "http"
        if scope["method"] not in ("GET", "HEAD"):
            response = Response(status_code=405, headers={"Allow": "GET, HEAD"})
            await response(scope, receive, send)
            return
        name = _path_below_mount(scope).lstrip("/")
        asset = await anyio.to_thread.run_sync(self.get, name)
        if asset is None:
            await Response("Not found.", status_code=404, media_type="text/plain")(
                scope, receive, send
            )
            return
        query = scope.get("query_string", b"").decode("latin-1")
        versioned = f"{VERSION_PARAMETER}={asset.version}" in query.split("&")
        response = asset_response(
            await asset.prepare(),
            Headers(scope=scope),
            cache_control=IMMUTABLE if versioned else REVALIDATE,
        )
        await response(scope, receive, send)


def _path_below_mount(scope: Scope) -> str:
    """The request path after the mount point: a mounted app's ``root_path`` ends with
    it, and its ``path`` is still the whole path."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path) and path[len(root_path) :][:1] in ("/", ""):
        return path[len(root_path) :]
    return path


class SingleAsset:
    """One file served at a fixed URL (``/widget.js``, ``/favicon.ico``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._asset: Asset | None = None

    def _get(self) -> Asset:
        info = os.stat(self.path)
        stamp = (info.st_size, info.st_mtime_ns)
        if self._asset is None or self._asset.stamp != stamp:
            self._asset = Asset(self.path, stamp)
        return self._asset

    async def get(self) -> Asset:
        """The file as it is now on disk, compressed, read off the event loop."""
        return await (await anyio.to_thread.run_sync(self._get)).prepare()
