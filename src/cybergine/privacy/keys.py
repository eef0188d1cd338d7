"""The server's keys: one HMAC key (audit chain, CSRF tokens) and the Fernet keys that
encrypt third-party secrets at rest (first key encrypts, all decrypt).

They come from ``CYBERGINE_SECRET_KEY`` and ``CYBERGINE_ENCRYPTION_KEYS``. In embedded
mode, when either is unset, a key file is generated in the data directory (mode 0600)
and reused on later starts. Outside embedded mode the server refuses to start without
both: a production instance must never invent keys it would lose on the next deploy.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
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
    data = json.loads(path.read_text())
    return ServerKeys(
        secret_key=str(data["secret_key"]).encode(),
        encryption_keys=tuple(str(key) for key in data["encryption_keys"]),
    )


def _load_or_create_key_file(path: Path) -> ServerKeys:
    if path.exists():
        return read_key_file(path)
    generated = ServerKeys(
        secret_key=generate_secret_key().encode(), encryption_keys=(generate_fernet_key(),)
    )
    write_key_file(path, generated)
    log.warning(
        "generated server keys for embedded mode; back this file up with the data",
        path=str(path),
    )
    return generated


def write_key_file(path: Path, keys: ServerKeys) -> None:
    """Write atomically with mode 0600 from the first byte (no window where it is readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"secret_key": keys.secret_key.decode(), "encryption_keys": list(keys.encryption_keys)}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)
