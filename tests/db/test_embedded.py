import json
import subprocess
import sys
from pathlib import Path

from cybergine.db.embedded import _prune_dead_handles, pid_file_owner


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
