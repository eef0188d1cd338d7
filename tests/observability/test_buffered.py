"""Increments wait in memory until a flush writes them to the shared files: once a
period from the process' own thread, before a scrape, and when the process exits."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import values
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from cybergine.observability.buffered import BufferedValues


def _in_file(directory: Path) -> float:
    [path] = directory.glob("counter_*.db")
    rows = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
    found = {row[0]: row[1] for row in rows}
    return float(found.get(mmap_key("c", "c_total", ["k"], ["v"], "help"), 0.0))


def test_increments_reach_the_file_when_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    buffer = BufferedValues(values.MultiProcessValue(), period=3600)  # type: ignore[no-untyped-call]
    value = buffer.value_class()("counter", "c", "c_total", ["k"], ["v"], "help")
    for _ in range(1000):
        value.inc(1)
    assert _in_file(tmp_path) == 0  # not written yet: no lock, no file write per increment
    buffer.flush()
    assert _in_file(tmp_path) == 1000
    value.inc(5)
    assert value.get() == 1005  # reading flushes
    value.inc(2)
    buffer.start()
    buffer.stop()  # as at exit: the rest is written
    assert _in_file(tmp_path) == 1007
