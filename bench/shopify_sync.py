"""``sync`` section of bench/shopify.py: a full sync from the Shopify simulator to
searchable, and a products/update webhook to search.

- The simulator serves a shop of ``--sync-products`` generated products (3 variants
  each, descriptions, images) and its pages, articles and policies; a web server in this
  process takes its webhooks (POST /webhooks/shopify); ``cybergine worker`` runs as a
  process of its own, so its peak RSS (VmHWM of /proc/<pid>/status) is the sync's alone.
  The worker loads the embedding model at start (its warm-up, ``catalog.warm_up``): the
  idle baseline has it loaded, and the peak includes its load.
- Full sync: from requesting it to every product searchable by its words *and* its
  vector (local model), the run completed (target ≤ 120 s; worker peak RSS ≤ 400 MB).
  Baseline in the same run: the bulk operation, its download and the relinking alone
  (no database), which is the floor a sync cannot go under.
- Webhook: ``--sync-webhooks`` products updated in the simulator one after the other,
  each timed from the change to its new title being found by product search's lexical
  index, and to its new vector (target p99 ≤ 2 s). Baseline: the same update applied by
  the handler in this process (no delivery, no queue).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import text

from cybergine.accounts.service.organisations import create_organisation
from cybergine.app import create_app
from cybergine.db.engine import Database
from cybergine.job_names import JobName
from cybergine.privacy import keys
from cybergine.settings import Settings, load_settings
from cybergine.shopify import bulk_jsonl, incremental, queries, sync, tokens
from cybergine.shopify.admin_api import AdminClient
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.simulator.store import product_to_rest
from cybergine.shopify.sync_models import ShopifySyncRun, SourceKind
from cybergine.web.threaded import ThreadedServer

CLIENT_ID = "bench-sync-client"
CLIENT_SECRET = "bench-sync-client-secret-0123456789abcdef"  # noqa: S105 (the simulator's)
DEADLINE_SECONDS = 900
ROOT = Path(__file__).resolve().parents[1]

_SEARCHABLE = text(
    """
    SELECT count(*) FILTER (WHERE s.visible) AS visible,
           count(*) FILTER (WHERE s.visible AND s.embedding IS NULL) AS without_vector,
           (SELECT count(*) FROM catalog_products p WHERE p.organisation_id = :o) AS products
    FROM catalog_product_search s WHERE s.organisation_id = :o
    """
)
_FOUND = text(
    "SELECT s.embedding IS NOT NULL FROM catalog_product_search s "
    "JOIN catalog_products p ON p.id = s.product_id "
    "WHERE p.organisation_id = :o AND p.external_id = :e "
    "AND s.tsv @@ plainto_tsquery('english', :w)"
)


def _percentiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[
        min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)
    ]


def _peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the most resident memory the process ever had."""
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
    except OSError:
        return None
    return None


def _rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return float("nan")


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


class _Worker:
    """``cybergine worker`` as a process of its own, its peak RSS sampled as it runs."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cybergine", "worker", "--concurrency", "4"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.children_peak = 0.0

    def sample(self) -> None:
        for child in _children(self.process.pid):
            self.children_peak = max(self.children_peak, _peak_rss_mb(child) or 0.0)

    @property
    def peak_mb(self) -> float:
        return _peak_rss_mb(self.process.pid) or float("nan")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err.decode(errors="replace")[-2000:]


async def _connect_shop(
    database: Database, settings: Settings, sim: ShopifySimulator, domain: str
) -> ShopifyShop:
    grant = await tokens.exchange_session_token(settings, domain, sim.session_token(domain))
    async with database.transaction() as session:
        organisation = await create_organisation(session, name="bench sync shop")
        shop = ShopifyShop(
            organisation_id=organisation.id,
            shop_domain=domain,
            status=ShopStatus.INSTALLED,
            installed_at=datetime.now(UTC),
        )
        tokens.store_grant(shop, grant)
        session.add(shop)
        await session.flush()
        session.expunge(shop)
    return shop


async def _full_sync(
    database: Database, shop: ShopifyShop, worker: _Worker, products: int, *, vectors: bool
) -> tuple[float, ShopifySyncRun]:
    async with database.transaction() as session:
        run_id = (await sync.request_sync(session, shop)).id
    started = time.perf_counter()
    words_at: float | None = None
    while time.perf_counter() - started < DEADLINE_SECONDS:
        worker.sample()
        async with database.autocommit() as session:
            run = await session.get(ShopifySyncRun, run_id, populate_existing=True)
            counts = (await session.execute(_SEARCHABLE, {"o": shop.organisation_id})).one()
        assert run is not None
        if run.status.finished and words_at is None:
            words_at = time.perf_counter() - started
            print(
                f"  run {run.status.value} after {words_at:.1f} s (catalogue written, searchable "
                f"by its words); {counts.without_vector:,} products still without a vector"
            )
        if run.status.finished and (
            run.error
            or (counts.products == products and (counts.without_vector == 0 or not vectors))
        ):
            return time.perf_counter() - started, run
        await asyncio.sleep(0.25)
    raise SystemExit(f"the sync did not finish in {DEADLINE_SECONDS} s")


async def _bulk_floor(
    settings: Settings, shop: ShopifyShop, access_token: str
) -> tuple[float, int]:
    """The bulk operation, its download and relinking, with no database: the floor."""
    started = time.perf_counter()
    products = 0
    async with AdminClient(settings, shop.shop_domain, access_token) as client:
        payload = await client.mutate(
            queries.BULK_OPERATION_RUN_QUERY,
            "bulkOperationRunQuery",
            {"query": queries.PRODUCTS_BULK},
        )
        gid = payload["bulkOperation"]["id"]
        while True:
            operation = (await client.query(queries.BULK_OPERATION, {"id": gid}))["node"]
            if operation["status"] == "COMPLETED":
                break
            await asyncio.sleep(0.05)
        relinker = bulk_jsonl.Relinker()
        number = 0
        async for raw in client.stream_lines(operation["url"]):
            number += 1
            for out in relinker.feed(number, raw):
                if isinstance(out, bulk_jsonl.ProductLines):
                    bulk_jsonl.rest_product(out, currency="EUR")
                    products += 1
        for out in relinker.finish():
            bulk_jsonl.rest_product(out, currency="EUR")
            products += 1
    return time.perf_counter() - started, products


async def _until_found(
    database: Database, shop: ShopifyShop, external_id: str, word: str, *, vector: bool
) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < 60:
        async with database.autocommit() as session:
            found = await session.scalar(
                _FOUND, {"o": shop.organisation_id, "e": external_id, "w": word}
            )
        if found is not None and (found or not vector):
            return time.perf_counter() - started
        await asyncio.sleep(0.005)
    by = "its words and vector" if vector else "its words"
    raise _NotFound(f"product {external_id} not searchable as {word!r} by {by} after 60 s")


class _NotFound(Exception):
    """An update that never reached search: the section stops with what explains it."""


_DELIVERIES = text(
    "SELECT d.topic, d.status, d.attempts, d.error, d.created_at FROM shopify_webhook_deliveries d "
    "WHERE d.shop_id = :shop AND d.payload->>'id' = :e ORDER BY d.created_at"
)
_PRODUCT_STATE = text(
    "SELECT p.title, p.updated_at, v.source_updated_at AS held, s.document, "
    "s.embedding IS NOT NULL AS embedded, s.updated_at AS refreshed "
    "FROM catalog_products p JOIN catalog_product_search s ON s.product_id = p.id "
    "LEFT JOIN shopify_source_versions v ON v.shop_id = :shop AND v.kind = :kind "
    "AND v.external_id = p.external_id "
    "WHERE p.organisation_id = :o AND p.external_id = :e"
)
_EMBED_JOBS = text(
    "SELECT j.id, j.status, e.type, e.at FROM procrastinate_jobs j "
    "JOIN procrastinate_events e ON e.job_id = j.id "
    "WHERE j.task_name = :task AND e.at > now() - interval '90 seconds' "
    "ORDER BY e.at"
)
_UNFINISHED_JOBS = text(
    "SELECT task_name, status, attempts, scheduled_at, count(*) FROM procrastinate_jobs "
    "WHERE status NOT IN ('succeeded', 'cancelled') GROUP BY 1, 2, 3, 4 ORDER BY 1"
)


async def _explain(
    database: Database, sim: ShopifySimulator, shop: ShopifyShop, external_id: str
) -> None:
    """What became of the product's webhook: the simulator's attempts to deliver it, our
    rows of its deliveries, the product and its search row as stored, the last 90 s of
    embedding jobs, and every job not done."""
    for sent in sim.webhooks.deliveries:
        if sent.shop == shop.shop_domain and str(sent.payload().get("id")) == external_id:
            outcome = f"status {sent.status}, {sent.attempts} attempt(s), {sent.error}"
            print(f"    sent {sent.topic}: {outcome}")
    async with database.autocommit() as session:
        for row in await session.execute(_DELIVERIES, {"shop": shop.id, "e": external_id}):
            print(f"    stored: {tuple(row)}")
        params = {
            "shop": shop.id,
            "o": shop.organisation_id,
            "e": external_id,
            "kind": SourceKind.PRODUCT.value,
        }
        for row in await session.execute(_PRODUCT_STATE, params):
            print(f"    held: title {row.title!r}, updated {row.updated_at}, version {row.held}")
            print(f"      searched as: {row.document[:120]!r}")
            print(f"      refreshed {row.refreshed}, with a vector: {row.embedded}")
        for row in await session.execute(_EMBED_JOBS, {"task": JobName.EMBED_PRODUCTS.value}):
            print(f"    embedding job {row.id} {row.type} at {row.at:%H:%M:%S.%f}")
        for row in await session.execute(_UNFINISHED_JOBS):
            print(f"    job not done: {tuple(row)}")


async def _webhooks(
    database: Database, sim: ShopifySimulator, shop: ShopifyShop, count: int, *, vectors: bool
) -> tuple[list[float], list[float], list[float]]:
    # Active products only: a draft is never shown, so it is never embedded either.
    products = sim.shop(shop.shop_domain).products
    ids = sorted(i for i, product in products.items() if product.status == "ACTIVE")
    lexical, dense, direct = [], [], []
    for index in range(count):
        product_id = ids[(index * 97) % len(ids)]
        word = f"zq{uuid.uuid4().hex[:8]}"
        started = time.perf_counter()
        sim.update_product(shop.shop_domain, product_id, title=f"Summit anorak {word}")
        try:
            await _until_found(database, shop, str(product_id), word, vector=False)
            lexical.append(time.perf_counter() - started)
            if vectors:
                await _until_found(database, shop, str(product_id), word, vector=True)
                dense.append(time.perf_counter() - started)
        except _NotFound as missing:
            print(f"  {missing}:")
            await _explain(database, sim, shop, str(product_id))
            raise SystemExit(1) from None
    # Baseline: the handler in this process, no delivery and no queue.
    for index in range(count):
        product_id = ids[(index * 89 + 1) % len(ids)]
        word = f"zq{uuid.uuid4().hex[:8]}"
        product = sim.update_product(shop.shop_domain, product_id, title=f"Ridge parka {word}")
        payload = product_to_rest(product)
        started = time.perf_counter()
        async with database.transaction() as session:
            await incremental.handle_product_upsert(
                session, shop, incremental.PRODUCTS_UPDATE, payload, f"bench-{uuid.uuid4()}"
            )
        direct.append(time.perf_counter() - started)
    return lexical, dense, direct


async def sync_section(url: str, database: Database, args: argparse.Namespace) -> None:
    count = args.sync_products
    print(f"\n== sync: {count:,} products x 3 variants from the Shopify simulator ==")
    secret_key, fernet_key = keys.generate_secret_key(), keys.generate_fernet_key()
    keys.install(keys.ServerKeys(secret_key=secret_key.encode(), encryption_keys=(fernet_key,)))
    workdir = Path(tempfile.mkdtemp(prefix="cybergine-bench-sync-"))
    with ShopifySimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as sim:
        settings = load_settings(
            database_url=url,
            data_dir=workdir,
            secret_key=secret_key,
            encryption_keys=fernet_key,
            shopify_admin_url=sim.admin_url,
            shopify_api_key=CLIENT_ID,
            shopify_api_secret=SecretStr(CLIENT_SECRET),
            shopify_bulk_poll_seconds=1.0,
            log_level="WARNING",
        )
        web = ThreadedServer(create_app(settings, run_worker=False), name="bench-web")
        web.start()
        sim.webhooks.url = f"{web.url}/webhooks/shopify"
        domain = f"bench-{uuid.uuid4().hex[:8]}.myshopify.com"
        started = time.perf_counter()
        sim.seed(domain, generate={"products": count}, content=True)
        print(f"  shop seeded in {time.perf_counter() - started:.1f} s")
        shop = await _connect_shop(database, settings, sim, domain)
        env = {
            **os.environ,
            "CYBERGINE_DATABASE_URL": url,
            "CYBERGINE_DATA_DIR": str(workdir / "worker"),
            "CYBERGINE_SECRET_KEY": secret_key,
            "CYBERGINE_ENCRYPTION_KEYS": fernet_key,
            "CYBERGINE_SHOPIFY_ADMIN_URL": sim.admin_url,
            "CYBERGINE_SHOPIFY_API_KEY": CLIENT_ID,
            "CYBERGINE_SHOPIFY_API_SECRET": CLIENT_SECRET,
            "CYBERGINE_SHOPIFY_BULK_POLL_SECONDS": "1",
            "CYBERGINE_LOG_LEVEL": "WARNING",
            **({"CYBERGINE_EMBEDDINGS": "none"} if args.sync_lexical_only else {}),
        }
        worker = _Worker(env)
        try:
            await asyncio.sleep(5)  # the worker's imports, its pool, its first poll
            idle = _rss_mb(worker.process.pid)
            took, run = await _full_sync(
                database, shop, worker, count, vectors=not args.sync_lexical_only
            )
            print(
                f"  full sync to searchable (words and vectors): {took:.1f} s "
                f"(target <= 120 s): run {run.status.value}, {run.products_written:,} products "
                f"written, {run.products_failed} refused, {run.documents_written} documents"
                + (f", error: {run.error}" if run.error else "")
            )
            print(
                f"  worker peak RSS (VmHWM): {worker.peak_mb:.0f} MB (target <= 400 MB); "
                f"baseline: the same worker idle before the sync, {idle:.0f} MB; "
                f"largest child process: {worker.children_peak:.0f} MB"
            )
            access_token = await tokens.access_token(database, shop.id, settings)
            floor, seen = await _bulk_floor(settings, shop, access_token)
            print(
                f"  baseline: bulk operation + download + relinking of {seen:,} products, "
                f"no database: {floor:.1f} s"
            )
            lexical, dense, direct = await _webhooks(
                database, sim, shop, args.sync_webhooks, vectors=not args.sync_lexical_only
            )
            for label, samples in (
                ("products/update to search (words)", lexical),
                ("products/update to search (words and vector)", dense),
                ("baseline: the handler in process, no delivery", direct),
            ):
                if not samples:
                    continue
                p50, p99 = _percentiles(samples)
                print(
                    f"    {label:<48} p50 {p50 * 1000:6.0f} ms   p99 {p99 * 1000:6.0f} ms"
                    f"   ({len(samples)} updates)"
                )
            print(f"  worker peak RSS at the end: {worker.peak_mb:.0f} MB")
        finally:
            errors = worker.stop()
            web.stop()
            if worker.process.returncode not in (0, -signal.SIGTERM) or sys.exc_info()[0]:
                print(f"  worker exited {worker.process.returncode}: {errors}")
            shutil.rmtree(workdir, ignore_errors=True)
