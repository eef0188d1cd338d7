"""Server keys: where they come from, the embedded key file, and `cybergine keys`."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from cybergine.cli import cli
from cybergine.privacy import keys
from cybergine.privacy.crypto import SecretBox
from cybergine.settings import Settings, load_settings
from tests.support.processes import clean_env, run_cli

SECRET = "s" * 40
runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_keys(server_keys: keys.ServerKeys) -> Iterator[None]:
    """`keys.load` installs process-wide: give the rest of the run its keys back."""
    try:
        yield
    finally:
        keys.install(server_keys)


def embedded(data_dir: Path, **overrides: object) -> Settings:
    # Explicit None: a developer's own CYBERGINE_* variables must not leak in.
    values: dict[str, object] = {
        "database_url": None,
        "secret_key": None,
        "encryption_keys": None,
        "data_dir": data_dir,
    }
    return load_settings(**{**values, **overrides})


def by_url(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": "postgresql://db.example/cybergine",
        "secret_key": None,
        "encryption_keys": None,
    }
    return load_settings(**{**values, **overrides})


# --- keys.load ----------------------------------------------------------------------


def test_outside_embedded_mode_missing_keys_are_named() -> None:
    with pytest.raises(keys.KeyConfigurationError) as both:
        keys.load(by_url())
    assert "CYBERGINE_SECRET_KEY and CYBERGINE_ENCRYPTION_KEYS must be set" in str(both.value)
    assert "cybergine keys generate" in str(both.value)

    with pytest.raises(keys.KeyConfigurationError) as one:
        keys.load(by_url(secret_key=SECRET))
    assert "CYBERGINE_ENCRYPTION_KEYS must be set" in str(one.value)
    assert "CYBERGINE_SECRET_KEY" not in str(one.value)


def test_outside_embedded_mode_no_key_file_is_written(tmp_path: Path) -> None:
    with pytest.raises(keys.KeyConfigurationError):
        keys.load(by_url(data_dir=tmp_path))
    assert not (tmp_path / keys.KEY_FILE_NAME).exists()


def test_outside_embedded_mode_configured_keys_are_installed() -> None:
    old, new = keys.generate_fernet_key(), keys.generate_fernet_key()
    loaded = keys.load(by_url(secret_key=SECRET, encryption_keys=f" {new} , {old},"))
    assert loaded.encryption_keys == (new, old)
    assert loaded.secret_key == SECRET.encode()
    assert keys.current() is loaded


def test_a_malformed_fernet_key_is_a_clear_error() -> None:
    good = keys.generate_fernet_key()
    with pytest.raises(keys.KeyConfigurationError) as caught:
        keys.load(by_url(secret_key=SECRET, encryption_keys=f"{good},not-a-fernet-key"))
    message = str(caught.value)
    assert "key 2 is not a Fernet key" in message
    assert "not-a-fernet-key" not in message


def test_a_short_secret_key_is_refused() -> None:
    with pytest.raises(keys.KeyConfigurationError, match="at least 32 bytes"):
        keys.load(by_url(secret_key="short", encryption_keys=keys.generate_fernet_key()))


def test_embedded_mode_creates_a_private_key_file_and_reuses_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = keys.load(embedded(data_dir))
    path = data_dir / "keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.read_key_file(path) == first
    assert keys.current() is first
    assert [p.name for p in data_dir.iterdir()] == ["keys.json"]  # no temporary files left

    second = keys.load(embedded(data_dir))
    assert second == first
    assert (
        SecretBox(second.encryption_keys).decrypt(SecretBox(first.encryption_keys).encrypt("kept"))
        == "kept"
    )


def test_the_key_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{}")
    path.chmod(0o644)
    previous = os.umask(0)
    try:
        keys.write_key_file(path, keys.ServerKeys(SECRET.encode(), (keys.generate_fernet_key(),)))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_explicit_keys_win_over_the_key_file(tmp_path: Path) -> None:
    from_file = keys.load(embedded(tmp_path))
    env_key = keys.generate_fernet_key()

    both = keys.load(embedded(tmp_path, secret_key=SECRET, encryption_keys=env_key))
    assert both == keys.ServerKeys(SECRET.encode(), (env_key,))

    # Only one set: the other still comes from the file.
    only_encryption = keys.load(embedded(tmp_path, encryption_keys=env_key))
    assert only_encryption.secret_key == from_file.secret_key
    assert only_encryption.encryption_keys == (env_key,)
    only_secret = keys.load(embedded(tmp_path, secret_key=SECRET))
    assert only_secret.encryption_keys == from_file.encryption_keys
    assert keys.read_key_file(tmp_path / "keys.json") == from_file


def test_starting_together_every_process_gets_the_same_keys(tmp_path: Path) -> None:
    settings = embedded(tmp_path / "data")
    start = threading.Barrier(8)

    def load() -> keys.ServerKeys:
        start.wait()
        return keys.load(settings)

    with ThreadPoolExecutor(8) as pool:
        loaded = list(pool.map(lambda _: load(), range(8)))
    assert all(each == loaded[0] for each in loaded)
    assert keys.read_key_file(tmp_path / "data" / "keys.json") == loaded[0]


def test_a_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"secret_key": "' + SECRET + '", "encryption_keys": [')
    with pytest.raises(keys.KeyConfigurationError) as caught:
        keys.load(embedded(tmp_path))
    assert str(path) in str(caught.value)
    assert SECRET not in str(caught.value)

    path.write_text(json.dumps({"secret_key": SECRET, "encryption_keys": ["nope"]}))
    with pytest.raises(keys.KeyConfigurationError, match="is not a Fernet key") as caught:
        keys.load(embedded(tmp_path))
    assert str(path) in str(caught.value)


# --- cybergine keys -----------------------------------------------------------------


def test_keys_generate_prints_usable_keys() -> None:
    result = runner.invoke(cli, ["keys", "generate"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    fernet_key = lines[0].removeprefix("encryption key: ")
    secret_key = lines[1].removeprefix("secret key: ")
    box = SecretBox([fernet_key])
    assert box.decrypt(box.encrypt("x")) == "x"
    Fernet(fernet_key)
    assert len(base64.urlsafe_b64decode(secret_key)) >= keys.MIN_SECRET_KEY_BYTES
    assert "CYBERGINE_ENCRYPTION_KEYS" in lines[2]
    assert "cybergine keys rotate" in lines[2]


def cli_env(database_url: str, server_keys: keys.ServerKeys) -> dict[str, str]:
    return {
        "CYBERGINE_DATABASE_URL": database_url,
        "CYBERGINE_SECRET_KEY": server_keys.secret_key.decode(),
        "CYBERGINE_ENCRYPTION_KEYS": ",".join(server_keys.encryption_keys),
        "CYBERGINE_LOG_LEVEL": "WARNING",
    }


REPORT = re.compile(r"re-encrypted (\d+) secrets in (\d+) columns; (\d+) were already current")


def test_keys_rotate_prints_the_report(database_url: str, server_keys: keys.ServerKeys) -> None:
    result = runner.invoke(cli, ["keys", "rotate"], env=cli_env(database_url, server_keys))
    assert result.exit_code == 0, result.output
    assert REPORT.search(result.output), result.output


def test_keys_rotate_refuses_to_run_without_keys(database_url: str) -> None:
    env = {
        "CYBERGINE_DATABASE_URL": database_url,
        "CYBERGINE_SECRET_KEY": "",
        "CYBERGINE_ENCRYPTION_KEYS": "",
    }
    result = runner.invoke(cli, ["keys", "rotate"], env=env)
    assert result.exit_code == 2
    assert "CYBERGINE_SECRET_KEY and CYBERGINE_ENCRYPTION_KEYS must be set" in result.output


def test_keys_rotate_refuses_an_unmigrated_database(
    empty_database_url: str, server_keys: keys.ServerKeys
) -> None:
    result = runner.invoke(cli, ["keys", "rotate"], env=cli_env(empty_database_url, server_keys))
    assert result.exit_code == 1
    assert "cybergine migrate" in result.output


def test_add_key_outside_embedded_mode_is_refused(
    database_url: str, server_keys: keys.ServerKeys
) -> None:
    result = runner.invoke(
        cli, ["keys", "rotate", "--add-key"], env=cli_env(database_url, server_keys)
    )
    assert result.exit_code == 2
    assert "--add-key works only in embedded mode" in result.output
    assert "CYBERGINE_ENCRYPTION_KEYS" in result.output
    assert "Traceback" not in result.output


def test_add_key_in_embedded_mode_puts_a_new_key_first(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = data_dir / "keys.json"
    env = clean_env(CYBERGINE_DATA_DIR=str(data_dir), CYBERGINE_LOG_LEVEL="WARNING")

    output = run_cli("keys", "rotate", env=env)
    assert REPORT.search(output), output
    original = keys.read_key_file(path)

    output = run_cli("keys", "rotate", "--add-key", env=env)
    assert REPORT.search(output), output
    assert "restart" in output.lower()
    rotated = keys.read_key_file(path)
    assert len(rotated.encryption_keys) == 2
    assert rotated.encryption_keys[1:] == original.encryption_keys
    assert rotated.encryption_keys[0] not in original.encryption_keys
    assert rotated.secret_key == original.secret_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
