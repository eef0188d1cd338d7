"""Retrieval quality and speed of the local embedding model on the rag-dev split.

For both tracks of ../shared/data/rag-dev (main: title + answers; answers-only), prints
Recall@1, Recall@5, MRR@10 and nDCG@10 of:
- LocalMiniLM on whole documents (truncated at 256 word pieces), ranked by cosine;
- LocalMiniLM on ~200-token chunks, a document scored by its best chunk (max-pool);
- BM25 (bm25s, English stop words + PyStemmer "english"), the lexical baseline;
plus documents (or chunks) per second and per-query latency p50/p99 (one query at a time,
its embedding included; index build not timed). First, CPU and wall time per query of
embedding the queries one call at a time, then --concurrency calls at once (as a worker's
concurrent reply jobs do; such calls share thread hops, one inference per text).

Reference (rag-dev README, whole documents): MiniLM nDCG@10 0.948 main / 0.884
answers-only; BM25 0.824 / 0.766.

Usage: .venv/bin/python bench/embedding_quality.py [--data DIR] [--threads N] [--concurrency N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bm25s  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import Stemmer  # type: ignore[import-not-found]
from tokenizers import Tokenizer

from cybergine.knowledge.embeddings import TOKENIZER_PATH, LocalMiniLM

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rag-dev"


@dataclass(frozen=True)
class Doc:
    id: str
    title: str
    text: str

    @property
    def full(self) -> str:
        return f"{self.title}\n\n{self.text}" if self.title else self.text


def read_jsonl(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def load(data: Path) -> tuple[dict[str, list[Doc]], list[tuple[str, str]], dict[str, str]]:
    tracks = {
        name: [Doc(d["id"], d.get("title", ""), d["text"]) for d in read_jsonl(data / file)]
        for name, file in (("main", "corpus.jsonl"), ("answers-only", "corpus-answers-only.jsonl"))
    }
    queries = [(q["id"], q["text"]) for q in read_jsonl(data / "queries.jsonl")]
    qrels: dict[str, str] = {}
    with (data / "qrels.tsv").open(encoding="utf-8") as file:
        next(file)
        for line in file:
            query_id, doc_id, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels[query_id] = doc_id
    return tracks, [q for q in queries if q[0] in qrels], qrels


# --- scoring -----------------------------------------------------------------------------


@dataclass
class Run:
    ranked: dict[str, list[str]]  # query id -> doc ids, best first (top 10)
    latencies_ms: list[float]


def metrics(run: Run, qrels: dict[str, str]) -> dict[str, float]:
    r1 = r5 = mrr = ndcg = 0.0
    for query_id, relevant in qrels.items():
        ranked = run.ranked.get(query_id, [])[:10]
        if relevant in ranked:
            rank = ranked.index(relevant) + 1
            r1 += rank == 1
            r5 += rank <= 5
            mrr += 1 / rank
            ndcg += 1 / math.log2(rank + 1)  # one relevant document: ideal DCG is 1
    n = len(qrels)
    return {"R@1": r1 / n, "R@5": r5 / n, "MRR@10": mrr / n, "nDCG@10": ndcg / n}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    low, high = math.floor(k), math.ceil(k)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def report(label: str, run: Run, qrels: dict[str, str], throughput: str = "") -> None:
    m = metrics(run, qrels)
    lat = run.latencies_ms
    print(
        f"  {label:<44} R@1 {m['R@1']:.3f}  R@5 {m['R@5']:.3f}  MRR@10 {m['MRR@10']:.3f}  "
        f"nDCG@10 {m['nDCG@10']:.3f}  | query p50 {statistics.median(lat):6.2f} ms  "
        f"p99 {percentile(lat, 99):6.2f} ms{throughput}"
    )


# --- dense --------------------------------------------------------------------------------


def chunk(text: str, tokenizer: Tokenizer, size: int, overlap: int) -> list[str]:
    """Windows of ``size`` word pieces (``overlap`` shared with the previous window), cut
    at word boundaries, as spans of the original text."""
    encoding = tokenizer.encode(text, add_special_tokens=False)
    offsets, words = encoding.offsets, encoding.word_ids
    n = len(offsets)
    if n <= size:
        return [text]
    pieces: list[str] = []
    start = 0
    while start < n:
        end = min(start + size, n)
        while end < n and end > start + 1 and words[end] == words[end - 1]:
            end -= 1  # do not split a word
        pieces.append(text[offsets[start][0] : offsets[end - 1][1]])
        if end >= n:
            break
        next_start = max(end - overlap, start + 1)
        while next_start > start + 1 and words[next_start] == words[next_start - 1]:
            next_start -= 1
        start = next_start
    return pieces


async def dense_run(
    provider: LocalMiniLM,
    passages: list[str],
    owner: list[int],  # passage -> document index
    doc_ids: list[str],
    queries: list[tuple[str, str]],
) -> tuple[Run, float]:
    started = time.perf_counter()
    matrix = np.asarray(await provider.embed(passages, kind="document"), dtype=np.float32)
    per_second = len(passages) / (time.perf_counter() - started)
    owners = np.asarray(owner)
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])  # passages are grouped
    single = len(passages) == len(doc_ids)
    ranked: dict[str, list[str]] = {}
    latencies: list[float] = []
    for query_id, text in queries:
        t0 = time.perf_counter()
        vector = np.asarray((await provider.embed([text], kind="query"))[0], dtype=np.float32)
        scores: npt.NDArray[np.float32] = matrix @ vector
        if not single:
            scores = np.maximum.reduceat(scores, starts)  # a document = its best chunk
        top = np.argsort(-scores)[:10]
        ranked[query_id] = [doc_ids[i] for i in top]
        latencies.append((time.perf_counter() - t0) * 1000)
    return Run(ranked, latencies), per_second


async def query_cost(provider: LocalMiniLM, texts: list[str], concurrency: int) -> None:
    for label, size in (("one call at a time", 1), (f"{concurrency} calls at once", concurrency)):
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, len(texts), size):
            calls = (provider.embed([text], kind="query") for text in texts[start : start + size])
            await asyncio.gather(*calls)
        cpu_ms = (time.process_time() - cpu) * 1000 / len(texts)
        wall_ms = (time.perf_counter() - wall) * 1000 / len(texts)
        print(f"  queries, {label:<20} CPU {cpu_ms:5.2f} ms/query  wall {wall_ms:5.2f} ms/query")


# --- lexical ------------------------------------------------------------------------------


def bm25_run(docs: list[Doc], queries: list[tuple[str, str]]) -> Run:
    stemmer = Stemmer.Stemmer("english")
    tokenize: Callable[[list[str]], object] = lambda texts: bm25s.tokenize(  # noqa: E731
        texts, stopwords="en", stemmer=stemmer, show_progress=False
    )
    retriever = bm25s.BM25()
    retriever.index(tokenize([d.full for d in docs]), show_progress=False)
    ranked: dict[str, list[str]] = {}
    latencies: list[float] = []
    for query_id, text in queries:
        t0 = time.perf_counter()
        results, _ = retriever.retrieve(tokenize([text]), k=10, show_progress=False)
        ranked[query_id] = [docs[int(i)].id for i in results[0]]
        latencies.append((time.perf_counter() - t0) * 1000)
    return Run(ranked, latencies)


# --- main -----------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument("--concurrency", type=int, default=16, help="queries embedded at once")
    parser.add_argument("--chunk-tokens", type=int, default=200)
    parser.add_argument("--overlap", type=int, default=50)
    args = parser.parse_args()

    tracks, queries, qrels = load(args.data)
    provider = LocalMiniLM(intra_op_num_threads=args.threads)
    t0 = time.perf_counter()
    provider.load()
    print(f"model load (sha256 check + session): {(time.perf_counter() - t0) * 1000:.0f} ms")
    await provider.embed(["warm up", "the session"], kind="query")
    counter = Tokenizer.from_file(str(TOKENIZER_PATH))
    counter.no_truncation()
    counter.no_padding()
    print(f"{len(queries)} queries; intra-op threads {args.threads}")
    await query_cost(provider, [text for _, text in queries], args.concurrency)

    for track, docs in tracks.items():
        doc_ids = [d.id for d in docs]
        lengths = [provider.count_tokens(d.full) for d in docs]
        truncated = sum(n > provider.max_tokens for n in lengths)
        print(
            f"\n[{track}] {len(docs)} documents, word pieces median "
            f"{statistics.median(lengths):.0f} max {max(lengths)}; "
            f"{truncated} longer than the model's {provider.max_tokens}"
        )
        run, per_second = await dense_run(
            provider, [d.full for d in docs], list(range(len(docs))), doc_ids, queries
        )
        report("MiniLM int8, whole document", run, qrels, f" | {per_second:6.1f} docs/s")

        variants = [(f"{args.chunk_tokens}/0", 0, False)]
        variants.append((f"{args.chunk_tokens}/{args.overlap}", args.overlap, False))
        if track == "main":
            variants.append(
                (f"{args.chunk_tokens}/{args.overlap}, title on each", args.overlap, True)
            )
        for label, overlap, title_each in variants:
            passages: list[str] = []
            owner: list[int] = []
            for index, doc in enumerate(docs):
                if title_each and doc.title:
                    size = args.chunk_tokens - len(
                        counter.encode(doc.title, add_special_tokens=False)
                    )
                    pieces = [
                        f"{doc.title}\n\n{p}" for p in chunk(doc.text, counter, size, overlap)
                    ]
                else:
                    pieces = chunk(doc.full, counter, args.chunk_tokens, overlap)
                passages.extend(pieces)
                owner.extend([index] * len(pieces))
            run, per_second = await dense_run(provider, passages, owner, doc_ids, queries)
            report(
                f"MiniLM chunks {label} ({len(passages)}), max-pool",
                run,
                qrels,
                f" | {per_second:6.1f} chunks/s",
            )

        report("BM25 (bm25s, en stopwords, Snowball)", bm25_run(docs, queries), qrels)


if __name__ == "__main__":
    asyncio.run(main())
