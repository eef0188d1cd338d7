"""Text extraction in a process of its own, one per document, with limits the kernel keeps.

A parser fed a hostile file can spin for hours or take gigabytes (issue 12: an 82 KB PDF,
38 minutes of CPU). Counting work inside the parsers (``extract``) stops the attacks we
know of; this module bounds the ones we do not:

- each document is read by a fresh child forked from multiprocessing's fork server,
  which has already imported the parsers: a child starts in milliseconds, and whatever
  memory it took goes back to the operating system when it exits;
- the parent kills the child (SIGKILL) at the wall-clock deadline; RLIMIT_CPU stops it
  too, should the parent be gone;
- RLIMIT_AS caps the memory it may take beyond what it starts with (its copy of the
  document included): a parser that asks for more gets ``MemoryError`` or dies;
- it runs niced, so the web process and PostgreSQL come first on a busy machine;
- at most ``concurrency`` run at once; a document that waited for a slot longer than the
  time limit is refused as busy (503) rather than left hanging.

Every outcome is an answer fit for the uploader: the document, the parser's own
rejection, or `DocumentTooLarge` naming the time or memory limit; never a 500, never a
hang. The child answers in JSON of a bounded size, not a pickle: a parser subverted by a
document must not be able to run code in the server by what it sends back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import resource
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import connection, forkserver
from multiprocessing.connection import Connection
from typing import Any

import structlog

from cybergine.errors import CybergineError
from cybergine.knowledge.extract import (
    CorruptDocument,
    DocumentTooLarge,
    DocumentType,
    ExtractedDocument,
    Limits,
    Section,
    extract,
)
from cybergine.priority import BACKGROUND_NICENESS

__all__ = ["ExtractionBusy", "ExtractionProcesses"]

PARSER_MODULES = ("cybergine.knowledge.extract.pdf", "cybergine.knowledge.extract.docx")

log = structlog.get_logger(__name__)

_CONTEXT = multiprocessing.get_context("forkserver")
# Room in the answer for JSON's quoting and the sections' headings, beyond the text.
_ANSWER_OVERHEAD_BYTES = 1024 * 1024
_DEFAULT_LIMITS = Limits()


class ExtractionBusy(CybergineError):
    status = 503
    type_slug = "extraction-busy"
    title = "Busy reading other documents"


@dataclass(eq=False)
class _Run:
    """One extraction, shared by the thread that supervises it and the event loop that
    awaits it (which kills it when cancelled)."""

    data: bytes
    filename: str | None
    declared_type: str | None
    queued_at: float = field(default_factory=time.monotonic)
    pid: int | None = None
    cancelled: bool = False
    exited: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def kill(self) -> None:
        with self.lock:
            self.cancelled = True
            if self.pid is not None and not self.exited:
                _kill(self.pid)


def _stopped() -> ExtractionBusy:
    return ExtractionBusy(
        "The server stopped while reading this document. Try again in a minute.",
        retry_after=60,
    )


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class ExtractionProcesses:
    """``await extract(data, ...)`` reads a document in a confined child process.

    ``timeout_seconds`` is the wall-clock limit of one extraction (and the longest a
    document waits for a free slot); ``memory_bytes`` the address space a child may add
    to what it starts with; ``concurrency`` how many run at once in this process.
    """

    def __init__(
        self,
        *,
        timeout_seconds: float,
        memory_bytes: int,
        concurrency: int,
        limits: Limits = _DEFAULT_LIMITS,
    ) -> None:
        if timeout_seconds <= 0 or memory_bytes <= 0 or concurrency < 1:
            raise ValueError("timeout, memory and concurrency must be positive")
        self.timeout_seconds = timeout_seconds
        self.memory_bytes = memory_bytes
        self.concurrency = concurrency
        self.limits = limits
        # The pool's threads only wait on children (no CPU), one per running extraction:
        # the pool's size is the concurrency limit, its queue the line for a slot.
        self._threads = ThreadPoolExecutor(concurrency, thread_name_prefix="cybergine-extraction")
        self._runs: set[_Run] = set()
        self._runs_lock = threading.Lock()

    @property
    def running(self) -> int:
        """Extractions whose child process has started and not yet been seen to end."""
        with self._runs_lock:
            return sum(1 for run in self._runs if run.pid is not None and not run.exited)

    def start_server(self) -> None:
        """Start the fork server now (it imports the parsers once, in about a second), so
        the first upload does not wait for it. Safe to call again."""
        # A child re-runs the parent's main script before its target (multiprocessing's
        # "main fixup"); under the `cybergine` console script that imports cybergine.cli.
        # Importing it in the fork server too makes that free in every child: ~7 ms to
        # start one instead of ~250 ms. (Python 3.11 cannot preload "__main__" itself.)
        # The PDF and Word parsers, which ``extract`` imports on first use, are loaded here
        # once rather than by every child.
        _CONTEXT.set_forkserver_preload([__name__, "cybergine.cli", *PARSER_MODULES])
        forkserver.ensure_running()

    async def extract(
        self, data: bytes, *, filename: str | None, declared_type: str | None
    ) -> ExtractedDocument:
        run = _Run(data, filename, declared_type)
        loop = asyncio.get_running_loop()
        with self._runs_lock:
            self._runs.add(run)
        try:
            return await loop.run_in_executor(self._threads, self._supervise, run)
        except asyncio.CancelledError:
            run.kill()  # the thread then sees its child gone and returns at once
            raise
        finally:
            with self._runs_lock:
                self._runs.discard(run)

    def kill_running(self) -> None:
        """Kill every child now (the server is stopping); their callers get an error."""
        with self._runs_lock:
            runs = list(self._runs)
        for run in runs:
            run.kill()

    # -- in a pool thread --

    def _supervise(self, run: _Run) -> ExtractedDocument:
        if time.monotonic() - run.queued_at > self.timeout_seconds:
            raise ExtractionBusy(
                "The server is busy reading other documents. Try again in a minute.",
                retry_after=60,
            )
        if run.cancelled:
            raise _stopped()
        receiver, sender = _CONTEXT.Pipe(duplex=False)
        process = _CONTEXT.Process(
            target=_child,
            args=(
                sender,
                run.data,
                run.filename,
                run.declared_type,
                self.limits,
                self.memory_bytes,
                math.ceil(self.timeout_seconds) + 1,
            ),
            name="cybergine-extraction",
            daemon=True,
        )
        # Not under the lock: starting may take a moment (the fork server's first start,
        # a large document to hand over), and a cancelling event loop must not wait.
        try:
            process.start()
        finally:
            sender.close()  # the child has its own copy (or there is no child)
        with run.lock:
            run.pid = process.pid
            if run.cancelled:
                _kill(run.pid)
        started = time.monotonic()
        try:
            ready = connection.wait([receiver, process.sentinel], timeout=self.timeout_seconds)
            answer = None
            if receiver in ready:
                try:
                    answer = receiver.recv_bytes(maxlength=self._max_answer_bytes())
                except (EOFError, OSError):
                    answer = None  # died without answering, or answered too much
            if answer is None and run.cancelled:
                raise _stopped()
            timed_out = not ready or time.monotonic() - started >= self.timeout_seconds
            return self._outcome(answer, timed_out=timed_out)
        finally:
            with run.lock:
                if process.exitcode is None:
                    _kill(process.pid)  # type: ignore[arg-type]
                run.exited = True
            process.join(5)
            receiver.close()
            log.debug(
                "extraction ended",
                seconds=round(time.monotonic() - started, 3),
                exitcode=process.exitcode,
            )
            if process.exitcode is not None:
                process.close()

    def _max_answer_bytes(self) -> int:
        # UTF-8 takes at most four bytes a character; JSON escapes control characters,
        # which the parsers have already removed.
        return 4 * self.limits.max_chars + _ANSWER_OVERHEAD_BYTES

    def _outcome(self, answer: bytes | None, *, timed_out: bool) -> ExtractedDocument:
        if answer is not None:
            return _decode(answer)
        if timed_out:
            seconds = self.timeout_seconds
            raise DocumentTooLarge(
                f"This document needs more time to read than the server allows ({seconds:g} "
                f"second{'' if seconds == 1 else 's'}). If it is very long, split it into "
                "smaller files; otherwise open it, save it again as PDF or Word and upload "
                "the new copy.",
                limit="seconds",
                maximum=math.ceil(seconds),
            )
        raise self._out_of_memory()

    def _out_of_memory(self) -> DocumentTooLarge:
        megabytes = self.memory_bytes // (1024 * 1024)
        return DocumentTooLarge(
            f"This document needs more memory to read than the server allows ({megabytes} "
            "MB). If it is very long, split it into smaller files; otherwise open it, save "
            "it again as PDF or Word and upload the new copy.",
            limit="megabytes",
            maximum=megabytes,
        )


# --- The child ------------------------------------------------------------------------


def _address_space_bytes() -> int | None:
    """This process's current address space (Linux), or None where it cannot be read."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return None


def _confine(memory_bytes: int, cpu_seconds: int) -> None:
    # Below its web process (cybergine.priority): a file is read on the CPU left over.
    os.nice(BACKGROUND_NICENESS)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # SIGXCPU at the soft limit ends the process (its default action), SIGKILL at the hard.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    current = _address_space_bytes()
    if current is not None:
        ceiling = current + memory_bytes
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            ceiling = min(ceiling, hard)
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))


def _child(
    sender: Connection,
    data: bytes,
    filename: str | None,
    declared_type: str | None,
    limits: Limits,
    memory_bytes: int,
    cpu_seconds: int,
) -> None:
    _confine(memory_bytes, cpu_seconds)
    message: dict[str, Any]
    try:
        document = extract(data, filename=filename, declared_type=declared_type, limits=limits)
        message = {"document": _encode(document)}
        del document
    except CybergineError as exc:
        message = {
            "rejected": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "detail": exc.detail,
            "extra": exc.extra,
        }
    except MemoryError:
        return  # no answer: the parent reports the memory limit
    del data
    sender.send_bytes(json.dumps(message, ensure_ascii=False).encode("utf-8"))
    sender.close()


def _encode(document: ExtractedDocument) -> dict[str, Any]:
    return {
        "type": document.type.value,
        "title": document.title,
        "page_count": document.page_count,
        "sections": [[list(section.headings), section.text] for section in document.sections],
    }


# --- Reading the child's answer (treated as untrusted) --------------------------------------


def _decode(answer: bytes) -> ExtractedDocument:
    try:
        message = json.loads(answer)
        if "document" in message:
            return _document(message["document"])
        error = _error_class(message["rejected"])
        extra = message["extra"]
        if error is None or not isinstance(message["detail"], str) or not isinstance(extra, dict):
            raise ValueError("not a known rejection")
        raise error(message["detail"], **extra)
    except CybergineError:
        raise
    except Exception as exc:  # anything malformed: the child misbehaved
        log.warning("an extraction answered something unreadable", error=type(exc).__name__)
        raise CorruptDocument() from None


def _document(fields: dict[str, Any]) -> ExtractedDocument:
    title, page_count, sections = fields["title"], fields["page_count"], fields["sections"]
    if not (title is None or isinstance(title, str)):
        raise ValueError("title")
    if not (page_count is None or isinstance(page_count, int)):
        raise ValueError("page_count")
    parsed = []
    for headings, text in sections:
        if not isinstance(text, str) or not all(isinstance(h, str) for h in headings):
            raise ValueError("section")
        parsed.append(Section(headings=tuple(headings), text=text))
    return ExtractedDocument(
        type=DocumentType(fields["type"]),
        title=title,
        sections=parsed,
        page_count=page_count,
    )


def _error_class(name: object) -> type[CybergineError] | None:
    """The CybergineError subclass of that dotted name: nothing else is ever built from
    what a child sends."""
    pending: list[type[CybergineError]] = [CybergineError]
    while pending:
        cls = pending.pop()
        if f"{cls.__module__}.{cls.__qualname__}" == name:
            return cls
        pending.extend(cls.__subclasses__())
    return None
