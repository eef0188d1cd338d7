import json
import subprocess
import sys
from pathlib import Path

import pytest

from cybergine.db.embedded import (
    SETTINGS_FILE,
    MemorySettings,
    _prune_dead_handles,
    machine_memory,
    memory_settings,
    pid_file_owner,
)
from tests.support.processes import clean_env

GB = 1024**3


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_pids_of_dead_processes_are_pruned(tmp_path: Path) -> None:
    import os

    dead = _dead_pid()
    handles = tmp_path / ".handle_pids.json"
    handles.write_text(json.dumps([dead, os.getpid()]))
    _prune_dead_handles(tmp_path)
    assert json.loads(handles.read_text()) == [os.getpid()]


def test_corrupt_handle_file_is_reset(tmp_path: Path) -> None:
    handles = tmp_path / ".handle_pids.json"
    handles.write_text("{not json")
    _prune_dead_handles(tmp_path)
    assert json.loads(handles.read_text()) == []


def test_no_running_server_without_a_live_postmaster(tmp_path: Path) -> None:
    assert pid_file_owner(tmp_path) is None
    (tmp_path / "postmaster.pid").write_text(f"{_dead_pid()}\n{tmp_path}\n")
    assert pid_file_owner(tmp_path) is None


@pytest.mark.parametrize(
    ("machine_gb", "expected"),
    [
        (0.5, MemorySettings(128, 256, 64)),  # PostgreSQL's defaults are the floor
        (2, MemorySettings(256, 1024, 64)),
        (24, MemorySettings(3072, 12288, 768)),
        (256, MemorySettings(4096, 131072, 1024)),  # a big host: capped, the rest is cache
    ],
)
def test_the_server_takes_a_share_of_the_machine(
    machine_gb: float, expected: MemorySettings
) -> None:
    assert memory_settings(int(machine_gb * GB)) == expected


def test_the_machine_is_measured() -> None:
    assert 256 * 1024**2 < machine_memory() < 64 * 1024**4


# Starts the embedded server in a process of its own (as `serve` would), prints what it
# runs with, and exits: the last handle stops the server.
_SHOW = """
import sys
from pathlib import Path
import psycopg
from cybergine.db import embedded
url = embedded.start(Path(sys.argv[1])).url
with psycopg.connect(url, autocommit=True) as conn:
    if len(sys.argv) > 2:
        conn.execute(sys.argv[2])
    print(*(conn.execute(f"SHOW {name}").fetchone()[0] for name in (
        "shared_buffers", "effective_cache_size", "maintenance_work_mem",
        "autovacuum_naptime")))
"""


def _embedded(data_dir: Path, *statement: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", _SHOW, str(data_dir), *statement],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout.split()


def _megabytes(value: str) -> int:
    number, unit = int(value[:-2]), value[-2:]
    return number * {"MB": 1, "GB": 1024}[unit]


@pytest.mark.slow
def test_the_embedded_server_is_sized_to_the_machine_and_alter_system_wins(
    tmp_path: Path,
) -> None:
    wanted = memory_settings(machine_memory())
    *memory, naptime = _embedded(tmp_path)
    assert [_megabytes(v) for v in memory] == [
        wanted.shared_buffers_mb,
        wanted.effective_cache_size_mb,
        wanted.maintenance_work_mem_mb,
    ]
    # Tables written fast get their first statistics within seconds, not a minute.
    assert naptime == "10s"
    # An operator's choice outlives every restart, which rewrites our file.
    _embedded(tmp_path, "ALTER SYSTEM SET shared_buffers = '160MB'")
    shared_buffers, *_ = _embedded(tmp_path)
    assert shared_buffers == "160MB"
    conf = (tmp_path / "postgres" / "postgresql.conf").read_text()
    assert conf.count(f"include_if_exists = '{SETTINGS_FILE}'") == 1
