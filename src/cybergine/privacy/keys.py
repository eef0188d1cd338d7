"""The server's keys: one HMAC key (audit chain, CSRF tokens) and the Fernet keys that
encrypt third-party secrets at rest (first key encrypts, all decrypt).

They come from ``CYBERGINE_SECRET_KEY`` and ``CYBERGINE_ENCRYPTION_KEYS``. In embedded
mode, when either is unset, a key file is generated in the data directory (mode 0600)
and reused on later starts. Outside embedded mode the server refuses to start without
both: a production instance must never invent keys it would lose on the next deploy.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.fernet import Fernet

from cybergine.settings import Settings

log = structlog.get_logger(__name__)

KEY_FILE_NAME = "keys.json"
MIN_SECRET_KEY_BYTES = 32


class KeyConfigurationError(RuntimeError):
    """The keys are missing or malformed; the message says how to fix it."""


@dataclass(frozen=True)
class ServerKeys:
    secret_key: bytes
    encryption_keys: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.secret_key) < MIN_SECRET_KEY_BYTES:
            raise KeyConfigurationError(
                f"CYBERGINE_SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes."
            )
        if not self.encryption_keys:
            raise KeyConfigurationError("CYBERGINE_ENCRYPTION_KEYS holds no key.")
        for index, key in enumerate(self.encryption_keys):
            try:
                Fernet(key)
            except ValueError as exc:
                raise KeyConfigurationError(
                    f"CYBERGINE_ENCRYPTION_KEYS: key {index + 1} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes; `cybergine keys generate` makes one)."
                ) from exc


_installed: ServerKeys | None = None


def install(keys: ServerKeys) -> None:
    """Make ``keys`` the process's keys (done once at start-up, and by tests)."""
    global _installed
    _installed = keys


def current() -> ServerKeys:
    if _installed is None:
        raise KeyConfigurationError("server keys are not loaded (call keys.load first)")
    return _installed


def generate_fernet_key() -> str:
    return Fernet.generate_key().decode()


def generate_secret_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(48)).decode()


def key_file(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE_NAME


def load(settings: Settings) -> ServerKeys:
    """Resolve the keys for this process and install them."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    encryption = (
        _split(settings.encryption_keys.get_secret_value()) if settings.encryption_keys else ()
    )
    if not (secret and encryption):
        if not settings.embedded:
            missing = [
                name
                for name, value in (
                    ("CYBERGINE_SECRET_KEY", secret),
                    ("CYBERGINE_ENCRYPTION_KEYS", encryption),
                )
                if not value
            ]
            raise KeyConfigurationError(
                f"{' and '.join(missing)} must be set when CYBERGINE_DATABASE_URL is set. "
                "Generate them with `cybergine keys generate`."
            )
        stored = _load_or_create_key_file(key_file(settings))
        secret = secret or stored.secret_key.decode()
        encryption = encryption or stored.encryption_keys
    keys = ServerKeys(secret_key=secret.encode(), encryption_keys=encryption)
    install(keys)
    return keys


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def read_key_file(path: Path) -> ServerKeys:
    try:
        data = json.loads(path.read_text())
        return ServerKeys(
            secret_key=str(data["secret_key"]).encode(),
            encryption_keys=tuple(str(key) for key in data["encryption_keys"]),
        )
    except KeyConfigurationError as exc:
        raise KeyConfigurationError(f"the key file {path}: {exc}") from None
    # `from None`: the parser's exception holds the file's text, keys included.
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyConfigurationError(
            f"the key file {path} cannot be read ({type(exc).__name__}); restore it from "
            "your backup: secrets encrypted with its keys are unreadable without it."
        ) from None


def _load_or_create_key_file(path: Path) -> ServerKeys:
    if not path.exists():
        generated = ServerKeys(
            secret_key=generate_secret_key().encode(), encryption_keys=(generate_fernet_key(),)
        )
        if _create_key_file(path, generated):
            log.warning(
                "generated server keys for embedded mode; back this file up with the data",
                path=str(path),
            )
            return generated
    return read_key_file(path)


def write_key_file(path: Path, keys: ServerKeys) -> None:
    """Replace the key file atomically; it has mode 0600 from its first byte."""
    tmp = _write_temporary(path, keys)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _create_key_file(path: Path, keys: ServerKeys) -> bool:
    """Create the key file unless it exists; False when another process got there first.

    `serve` and `worker` may start together on a fresh data directory: with a plain
    replace, each could go on using keys the other has overwritten. A hard link fails
    when the target exists, and the file appears with its whole content at once.
    """
    tmp = _write_temporary(path, keys)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_directory(path.parent)
    return True


def _write_temporary(path: Path, keys: ServerKeys) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"secret_key": keys.secret_key.decode(), "encryption_keys": list(keys.encryption_keys)}
    # mkstemp: a fresh name (no stale or shared temporary file) created 0600 with O_EXCL.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            # Losing this file loses every secret encrypted with its keys: make it
            # durable before it replaces the previous one.
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _fsync_directory(directory: Path) -> None:
    # Some platforms and filesystems cannot open or sync a directory; the rename is
    # still atomic there, only its durability across a power loss is weaker.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
