"""Retrieval quality and speed of the knowledge base, with a BM25 baseline from the same run.

On ../shared/data/rag-dev (StackFAQ dev split; both tracks: FAQ question + answers, and
answers only) it prints Recall@1, Recall@5, MRR@10 and nDCG@10 for our lexical (BM25 in
PostgreSQL), dense (all-MiniLM-L6-v2 int8, HNSW) and hybrid retrieval, beside bm25s;
query latency p50/p99 (query embedding included) on that corpus and on a synthetic corpus
of 100,000 chunks; and ingestion rate with and without the local embedding model.

Usage: .venv/bin/python bench/retrieval.py [--data ../shared/data/rag-dev] [--synthetic 100000]
       [--sweep]   (also print hybrid quality for a range of fusion weights)
Runs on its own embedded PostgreSQL in a temporary directory (or CYBERGINE_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from cybergine.accounts.service.organisations import create_organisation
from cybergine.db import migrate
from cybergine.db.engine import Database
from cybergine.knowledge import bulk
from cybergine.knowledge import search as retrieval
from cybergine.knowledge.embeddings import LocalMiniLM
from cybergine.knowledge.models import EMBEDDING_DIMENSIONS
from cybergine.privacy import keys

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "rag-dev"


# --- Data and metrics -----------------------------------------------------------------


def load(
    data: Path,
) -> tuple[dict[str, list[dict[str, str]]], list[dict[str, str]], dict[str, str]]:
    def jsonl(name: str) -> list[dict[str, str]]:
        return [json.loads(line) for line in (data / name).read_text().splitlines() if line.strip()]

    tracks = {"main": jsonl("corpus.jsonl"), "answers-only": jsonl("corpus-answers-only.jsonl")}
    queries = jsonl("queries.jsonl")
    qrels = {}
    for line in (data / "qrels.tsv").read_text().splitlines()[1:]:
        query_id, doc_id, _ = line.split("\t")
        qrels[query_id] = doc_id
    return tracks, queries, qrels


def metrics(runs: dict[str, list[str]], qrels: dict[str, str]) -> dict[str, float]:
    r1 = r5 = mrr = ndcg = 0.0
    for query_id, relevant in qrels.items():
        ranked = list(dict.fromkeys(runs.get(query_id, [])))
        rank = ranked.index(relevant) + 1 if relevant in ranked else None
        if rank is not None:
            r1 += rank == 1
            r5 += rank <= 5
            if rank <= 10:
                mrr += 1 / rank
                ndcg += 1 / math.log2(rank + 1)
    n = len(qrels)
    return {"R@1": r1 / n, "R@5": r5 / n, "MRR@10": mrr / n, "nDCG@10": ndcg / n}


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return statistics.median(ordered), p99


def bm25s_runs(
    corpus: list[dict[str, str]], queries: list[dict[str, str]]
) -> tuple[dict[str, list[str]], list[float]]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    texts = [f"{d['title']}\n{d['text']}".strip() for d in corpus]
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    runs, latencies = {}, []
    for query in queries:
        started = time.perf_counter()
        tokens = bm25s.tokenize(
            [query["text"]], stopwords="en", stemmer=stemmer, show_progress=False
        )
        docs, _ = retriever.retrieve(tokens, k=10, show_progress=False)
        latencies.append((time.perf_counter() - started) * 1000)
        runs[query["id"]] = [corpus[i]["id"] for i in docs[0]]
    return runs, latencies


# --- Our side --------------------------------------------------------------------------


async def new_organisation(database: Database, name: str) -> uuid.UUID:
    async with database.transaction() as session:
        return (await create_organisation(session, name=name)).id


async def ingest(
    database: Database, organisation_id: uuid.UUID, corpus: list[dict[str, str]], provider: Any
) -> float:
    records = [
        bulk.Record(line=n, external_id=d["id"], title=d["title"], text=d["text"], metadata={})
        for n, d in enumerate(corpus, start=1)
    ]
    report = bulk.ImportReport()
    started = time.perf_counter()
    await bulk.import_records(
        database,
        organisation_id=organisation_id,
        records=records,
        collection=None,
        provider=provider,
        report=report,
    )
    elapsed = time.perf_counter() - started
    assert not report.errors, report.errors[:3]
    return len(corpus) / elapsed


async def run_queries(
    database: Database,
    organisation_id: uuid.UUID,
    queries: list[dict[str, str]],
    provider: LocalMiniLM | None,
    weights: retrieval.FusionWeights,
    *,
    dense: bool,
    vectors: dict[str, list[float]] | None = None,
) -> tuple[dict[str, list[str]], list[float]]:
    runs, latencies = {}, []
    async with database.sessionmaker() as session:
        for query in queries:
            started = time.perf_counter()
            vector = None
            if dense:
                if vectors is not None:
                    vector = vectors[query["id"]]
                else:
                    assert provider is not None
                    vector = (await provider.embed([query["text"]], kind="query"))[0]
            hits = await retrieval.search(
                session,
                organisation_id=organisation_id,
                query=query["text"],
                query_vector=vector,
                embedding_model=provider.name if provider else None,
                k=10,
                weights=weights,
            )
            latencies.append((time.perf_counter() - started) * 1000)
            runs[query["id"]] = [h.external_id or "" for h in hits]
            await session.rollback()
    return runs, latencies


class RandomVectors:
    """Stand-in embeddings for the synthetic latency corpus: random unit vectors cost
    nothing to make, and an HNSW search over them is no easier than over real ones."""

    name = "minilm-l6-v2-int8"
    dimensions = EMBEDDING_DIMENSIONS

    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text.split()) * 1.3)

    async def embed(self, texts: Sequence[str], *, kind: str) -> list[list[float]]:
        matrix = self.rng.standard_normal((len(texts), self.dimensions)).astype(np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix.tolist()  # type: ignore[no-any-return]


def synthetic_corpus(n_docs: int, vocabulary: list[str], seed: int = 11) -> list[dict[str, str]]:
    """Documents of ~40 words drawn from a Zipf-like distribution over real words, so term
    statistics look like a real catalogue's (a few frequent words, a long tail)."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    return [
        {
            "id": f"syn-{n}",
            "title": " ".join(rng.choices(vocabulary, weights, k=5)),
            "text": " ".join(rng.choices(vocabulary, weights, k=40)),
        }
        for n in range(n_docs)
    ]


def table(title: str, rows: list[tuple[str, dict[str, float], tuple[float, float] | None]]) -> None:
    print(f"\n{title}")
    print(
        f"{'method':<34}{'R@1':>7}{'R@5':>7}{'MRR@10':>8}{'nDCG@10':>9}{'p50 ms':>9}{'p99 ms':>9}"
    )
    for name, m, lat in rows:
        p50, p99 = lat if lat else (float("nan"), float("nan"))
        print(
            f"{name:<34}{m['R@1']:>7.3f}{m['R@5']:>7.3f}{m['MRR@10']:>8.3f}{m['nDCG@10']:>9.3f}"
            f"{p50:>9.1f}{p99:>9.1f}"
        )


async def main(args: argparse.Namespace) -> None:
    keys.install(
        keys.ServerKeys(secret_key=os.urandom(32), encryption_keys=(keys.generate_fernet_key(),))
    )
    workdir = Path(tempfile.mkdtemp(prefix="cybergine-bench-"))
    try:
        url = os.environ.get("CYBERGINE_DATABASE_URL")
        if not url:
            from cybergine.db import embedded

            url = embedded.start(workdir).url
        migrate.upgrade(url)
        database = Database(url, pool_size=4)
        provider = LocalMiniLM()
        await provider.embed(["warm up"], kind="query")
        tracks, queries, qrels = load(args.data)
        print(f"rag-dev: {len(queries)} queries, {len(tracks['main'])} documents per track")

        for track, corpus in tracks.items():
            organisation = await new_organisation(database, f"bench {track}")
            rate_model = await ingest(database, organisation, corpus, provider)
            lexical_org = await new_organisation(database, f"bench {track} lexical")
            rate_lexical = await ingest(database, lexical_org, corpus, None)
            vectors = {
                q["id"]: v
                for q, v in zip(
                    queries,
                    await provider.embed([q["text"] for q in queries], kind="query"),
                    strict=True,
                )
            }
            baseline, baseline_latency = bm25s_runs(corpus, queries)
            lexical, lexical_latency = await run_queries(
                database, lexical_org, queries, None, retrieval.DEFAULT_WEIGHTS, dense=False
            )
            dense, _ = await run_queries(
                database,
                organisation,
                queries,
                provider,
                retrieval.FusionWeights(1.0, 0.0),
                dense=True,
                vectors=vectors,
            )
            hybrid, hybrid_latency = await run_queries(
                database, organisation, queries, provider, retrieval.DEFAULT_WEIGHTS, dense=True
            )
            table(
                f"track {track} (ingestion: {rate_model:.0f} docs/s with the model, "
                f"{rate_lexical:.0f} docs/s lexical only)",
                [
                    (
                        "BM25 baseline (bm25s)",
                        metrics(baseline, qrels),
                        percentiles(baseline_latency),
                    ),
                    (
                        "lexical (BM25 in PostgreSQL)",
                        metrics(lexical, qrels),
                        percentiles(lexical_latency),
                    ),
                    ("dense (MiniLM int8, HNSW)", metrics(dense, qrels), None),
                    (
                        f"hybrid (w_dense={retrieval.DEFAULT_WEIGHTS.dense})",
                        metrics(hybrid, qrels),
                        percentiles(hybrid_latency),
                    ),
                ],
            )
            if args.sweep:
                rows = []
                for w in (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9):
                    runs, _ = await run_queries(
                        database,
                        organisation,
                        queries,
                        provider,
                        retrieval.FusionWeights(w, 1 - w),
                        dense=True,
                        vectors=vectors,
                    )
                    rows.append((f"hybrid w_dense={w}", metrics(runs, qrels), None))
                table(f"fusion weight sweep, track {track}", rows)

        if args.synthetic:
            words = sorted(
                {
                    word
                    for d in tracks["main"]
                    for w in d["text"].split()
                    if (word := w.lower().strip(".,!?()\"'")).isalpha() and len(word) <= 20
                }
            )
            corpus = synthetic_corpus(args.synthetic, words)
            organisation = await new_organisation(database, "bench synthetic")
            # A bulk load of this size builds the HNSW graph once at the end (as an operator
            # would for a first import) instead of growing it a row at a time.
            async with database.transaction() as session:
                await session.execute(text("DROP INDEX ix_kb_chunks_embedding"))
            started = time.perf_counter()
            rate = await ingest(database, organisation, corpus, RandomVectors())
            loaded = time.perf_counter() - started
            started = time.perf_counter()
            async with database.transaction() as session:
                await session.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
                await session.execute(text("SET LOCAL statement_timeout = 0"))
                await session.execute(
                    text(
                        "CREATE INDEX ix_kb_chunks_embedding ON kb_chunks USING hnsw"
                        " (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
                    )
                )
                await session.execute(text("ANALYZE kb_chunks"))
            built = time.perf_counter() - started
            print(
                f"\nsynthetic corpus: {len(corpus)} chunks loaded in {loaded:.0f} s "
                f"({rate:.0f} docs/s, lexical index and statistics included), "
                f"HNSW built in {built:.0f} s"
            )
            sample = random.Random(3).sample(queries, min(200, len(queries)))
            for label in ("first pass, cold cache", "steady state"):
                _, lexical_latency = await run_queries(
                    database, organisation, sample, None, retrieval.DEFAULT_WEIGHTS, dense=False
                )
                _, hybrid_latency = await run_queries(
                    database, organisation, sample, provider, retrieval.DEFAULT_WEIGHTS, dense=True
                )
                print(f"  {label}:")
                for name, samples in (
                    ("lexical", lexical_latency),
                    ("hybrid, query embedding included", hybrid_latency),
                ):
                    p50, p99 = percentiles(samples)
                    print(
                        f"    {name:<36} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
                        f"   ({len(samples)} queries)"
                    )
        await database.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--synthetic", type=int, default=100_000)
    parser.add_argument("--sweep", action="store_true")
    asyncio.run(main(parser.parse_args()))
