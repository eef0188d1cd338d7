"""A customer's export as a portable bundle (policy §14: access and portability).

A ZIP archive another service can read without us: ``customer.json`` (the export of
``privacy.export``, each attachment's bytes moved out to a file it names), the files
under ``attachments/``, and ``manifest.json``, the SHA-256 and size of every one of
them, signed by the server (``manifest.sig``, Ed25519, ``privacy.signing``) with the
key that checks it beside it (``signing-key.pem``; the server publishes the same key).
:func:`verify_bundle` checks all of it; ``cybergine privacy verify-export`` runs it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import mimetypes
import zipfile
from datetime import UTC, datetime
from typing import Any

from cybergine.privacy import signing

BUNDLE_FORMAT = "cybergine.customer-bundle/1"
DATA = "customer.json"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "signing-key.pem"
_ENVELOPE = frozenset({MANIFEST, SIGNATURE, PUBLIC_KEY})


def build_bundle(exported: dict[str, Any]) -> bytes:
    """``exported`` (a customer's export) as a signed ZIP archive."""
    data = copy.deepcopy(exported)
    files: list[tuple[str, bytes]] = []
    for conversation in data.get("conversations", []):
        for message in conversation.get("messages", []):
            attachment = message.get("attachment")
            if not attachment or attachment.get("data") is None:
                continue
            path = f"attachments/{attachment['id']}{_extension(attachment.get('mime_type'))}"
            files.append((path, base64.b64decode(attachment.pop("data"))))
            attachment["file"] = path
    files.insert(0, (DATA, json.dumps(data, ensure_ascii=False, indent=2).encode()))
    manifest = json.dumps(
        {
            "format": BUNDLE_FORMAT,
            "export_format": exported.get("format"),
            "created_at": datetime.now(UTC).isoformat(),
            "files": [
                {"path": path, "sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
                for path, content in files
            ],
        },
        indent=2,
    ).encode()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path, content in files:
            bundle.writestr(path, content)
        bundle.writestr(MANIFEST, manifest)
        bundle.writestr(SIGNATURE, signing.sign(manifest))
        bundle.writestr(PUBLIC_KEY, signing.public_key_pem())
    return archive.getvalue()


def verify_bundle(archive: bytes, public_key: str | None = None) -> list[str]:
    """What is wrong with ``archive``; nothing when every file is the one the manifest
    names, unchanged, and the manifest carries a valid signature of ``public_key`` (the
    server's, by default the one in the bundle)."""
    try:
        bundle = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile:
        return ["not a ZIP archive"]
    with bundle:
        names = set(bundle.namelist())
        missing = sorted(_ENVELOPE - names)
        if missing:
            return [f"no {name} in the bundle" for name in missing]
        manifest_bytes = bundle.read(MANIFEST)
        key = public_key or bundle.read(PUBLIC_KEY).decode("ascii", "replace")
        signature = bundle.read(SIGNATURE).decode("ascii", "replace").strip()
        if not signing.verify(manifest_bytes, signature, key):
            return ["the manifest's signature does not verify"]
        try:
            listed = json.loads(manifest_bytes)["files"]
        except (ValueError, KeyError, TypeError):
            return ["the manifest is not readable"]
        problems = []
        for entry in listed:
            path = entry.get("path")
            if path not in names:
                problems.append(f"{path}: listed but not in the bundle")
                continue
            content = bundle.read(path)
            if hashlib.sha256(content).hexdigest() != entry.get("sha256"):
                problems.append(f"{path}: its SHA-256 is not the manifest's")
        unlisted = names - _ENVELOPE - {entry.get("path") for entry in listed}
        problems += [f"{path}: in the bundle but not in the manifest" for path in sorted(unlisted)]
        return problems


def _extension(mime_type: str | None) -> str:
    """A file name ending for a MIME type we know, from the standard table, else none;
    never anything taken from the customer's own file name."""
    return (mimetypes.guess_extension(mime_type) if mime_type else None) or ""


__all__ = ["BUNDLE_FORMAT", "build_bundle", "verify_bundle"]
