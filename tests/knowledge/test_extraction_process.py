"""Extraction in a confined child process: same answers as in-process, and limits of
time, memory and concurrency that hold whatever the document does."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import pytest

from cybergine.knowledge.extract import (
    DocumentTooLarge,
    EmptyDocument,
    Limits,
    UnsupportedDocument,
    extract,
)
from cybergine.knowledge.extraction_process import ExtractionBusy, ExtractionProcesses
from tests.support.process_memory import extraction_children
from tests.support.slow_documents import long_pdf

MIB = 1024 * 1024
HTML = (
    b"<html><head><title>Care guide</title></head><body><h1>Washing</h1>"
    b"<p>Cold water only.</p><h2>Drying</h2><p>Flat, in the shade.</p></body></html>"
)


def processes(**overrides: float) -> ExtractionProcesses:
    options: dict[str, float] = {"timeout_seconds": 20, "memory_bytes": 256 * MIB}
    options.update(overrides)
    pool = ExtractionProcesses(
        timeout_seconds=options["timeout_seconds"],
        memory_bytes=int(options["memory_bytes"]),
        concurrency=int(overrides.get("concurrency", 2)),
    )
    pool.start_server()
    return pool


async def until(predicate: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_a_document_read_in_a_child_is_what_extract_reads() -> None:
    pool = processes()
    document = await pool.extract(HTML, filename="care.html", declared_type="text/html")
    assert document == extract(HTML, filename="care.html", declared_type="text/html")
    assert document.title == "Care guide"


async def test_a_rejection_comes_back_as_the_same_readable_error() -> None:
    pool = processes()
    with pytest.raises(UnsupportedDocument) as unsupported:
        await pool.extract(b"\x00\x01\x02binary", filename="x.bin", declared_type=None)
    assert "not supported" in unsupported.value.detail
    with pytest.raises(EmptyDocument):
        await pool.extract(b"   \n\n  ", filename="blank.txt", declared_type="text/plain")


async def test_a_document_that_takes_too_long_is_killed_at_the_deadline() -> None:
    pool = processes(timeout_seconds=0.4)
    slow = long_pdf()
    started = time.monotonic()
    with pytest.raises(DocumentTooLarge) as refused:
        await pool.extract(slow.data, filename=slow.filename, declared_type=slow.content_type)
    assert 0.4 <= time.monotonic() - started < 2
    assert refused.value.extra == {"limit": "seconds", "maximum": 1}
    assert "more time to read than the server allows (0.4 seconds)" in refused.value.detail
    await until(lambda: not extraction_children(os.getpid()))


async def test_a_document_that_needs_too_much_memory_is_refused() -> None:
    # Limits raised so that no parser limit refuses it first: only memory stops it.
    pool = ExtractionProcesses(
        timeout_seconds=20,
        memory_bytes=16 * MIB,
        concurrency=1,
        limits=Limits(max_bytes=64 * MIB, max_chars=64 * MIB),
    )
    text = b"lorem ipsum dolor sit amet\n" * (24 * MIB // 27)
    with pytest.raises(DocumentTooLarge) as refused:
        await pool.extract(text, filename="large.txt", declared_type="text/plain")
    assert refused.value.extra == {"limit": "megabytes", "maximum": 16}
    assert "more memory to read than the server allows (16 MB)" in refused.value.detail


async def test_no_more_than_the_concurrency_run_at_once_and_a_long_wait_is_busy() -> None:
    pool = processes(timeout_seconds=0.4, concurrency=1)
    slow = long_pdf()
    seen: list[int] = []

    async def watch() -> None:
        while True:
            seen.append(len(extraction_children(os.getpid())))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    outcomes = await asyncio.gather(
        *(
            pool.extract(slow.data, filename=slow.filename, declared_type=slow.content_type)
            for _ in range(2)
        ),
        return_exceptions=True,
    )
    watcher.cancel()
    assert max(seen) == 1
    assert [type(outcome) for outcome in outcomes] == [DocumentTooLarge, ExtractionBusy]
    assert isinstance(outcomes[1], ExtractionBusy)
    assert outcomes[1].status == 503
    assert outcomes[1].extra == {"retry_after": 60}


async def test_a_cancelled_extraction_kills_its_child() -> None:
    pool = processes(timeout_seconds=60)
    slow = long_pdf()
    task = asyncio.create_task(
        pool.extract(slow.data, filename=slow.filename, declared_type=slow.content_type)
    )
    await until(lambda: bool(extraction_children(os.getpid())))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: not extraction_children(os.getpid()), seconds=0.5)
    assert pool.running == 0


async def test_kill_running_stops_every_child() -> None:
    pool = processes(timeout_seconds=60)
    slow = long_pdf()
    tasks = [
        asyncio.create_task(
            pool.extract(slow.data, filename=slow.filename, declared_type=slow.content_type)
        )
        for _ in range(2)
    ]
    await until(lambda: pool.running == 2)
    started = time.monotonic()
    pool.kill_running()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert time.monotonic() - started < 0.5
    assert all(isinstance(outcome, ExtractionBusy) for outcome in outcomes)
    assert not extraction_children(os.getpid())
