"""A shop's full sync: its catalogue by bulk operation, then its content.

A run is a row (``ShopifySyncRun``) that one job advances step by step, each step
committed, so a worker that dies mid-way loses nothing the next attempt cannot redo:

1. queued: ask Shopify for the shop's currency, start the bulk query (one per shop at a
   time: an operation a dead run left running is cancelled first), keep its id;
2. running: Shopify is making the file; the job looks again later (``poll_seconds``)
   unless ``bulk_operations/finish`` wakes it first (``wake_for_bulk_operation``);
3. applying: the file is streamed line by line (``bulk_jsonl``), its products written in
   batches (``catalog.batch.write_products``), each batch committed with the line the
   run reached (``lines_applied``). A run that starts again downloads the file again and
   skips those lines; a product it meets again is written again to the same result.
4. the shop's products the run did not write are deleted (the shop no longer has them),
   the content synced (``shopify.content``), the run completed.

Runs of one shop never overlap: the job is deferred with a queueing lock and a lock per
shop. Versions (``ShopifySourceVersion``) keep a product a webhook updated after the
bulk snapshot from being written back to its older state.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.catalog import batch, service
from cybergine.catalog.shape import ProductDraft, read_product
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from cybergine.db.tenancy import TenantScope
from cybergine.errors import CybergineError, InvalidInput
from cybergine.job_names import JobName
from cybergine.privacy.audit import Actor
from cybergine.queue import bring_forward, defer
from cybergine.settings import Settings
from cybergine.shopify import bulk_jsonl, content, queries
from cybergine.shopify.admin_api import AccessRevoked, AdminApiError, AdminClient, UserErrors
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.shopify.sync_models import (
    KEPT_ERRORS,
    KEPT_RUNS,
    SYNC_ERROR_LENGTH,
    ShopifySourceVersion,
    ShopifySyncRun,
    SourceKind,
    SyncKind,
    SyncStatus,
)

log = structlog.get_logger(__name__)

SYNC_ACTOR = Actor.system("shopify-sync")
# Products written per transaction, and the window of products the reader holds.
BATCH_SIZE = 250
WINDOW = 256
# A bulk operation still being made.
_UNFINISHED = {"CREATED", "RUNNING", "CANCELING"}
# Called after each committed batch with the run's id and the line reached (tests stop a
# run there as a crash would).
AfterBatch = Callable[[uuid.UUID, int], Awaitable[None]]
TokenSource = Callable[[ShopifyShop], Awaitable[str]]


def lock_for(shop_id: uuid.UUID) -> str:
    return f"shopify-sync:{shop_id}"


def now() -> datetime:
    return datetime.now(UTC)


# --- Requesting a sync ----------------------------------------------------------------


async def request_sync(
    session: AsyncSession, shop: ShopifyShop, kind: SyncKind = SyncKind.FULL
) -> ShopifySyncRun:
    """A run of ``kind`` for the shop and its job, unless one is under way (returned)."""
    active = await session.scalar(
        select(ShopifySyncRun)
        .where(
            ShopifySyncRun.shop_id == shop.id,
            ShopifySyncRun.status.not_in([SyncStatus.COMPLETED, SyncStatus.FAILED]),
        )
        .order_by(ShopifySyncRun.created_at.desc())
        .limit(1)
    )
    if active is not None:
        return active
    run = ShopifySyncRun(organisation_id=shop.organisation_id, shop_id=shop.id, kind=kind)
    session.add(run)
    await session.flush()
    await _defer(session, run)
    return run


async def _defer(
    session: AsyncSession, run: ShopifySyncRun, schedule_at: datetime | None = None
) -> None:
    try:
        async with session.begin_nested():
            await defer(
                session,
                JobName.SHOPIFY_SYNC,
                queueing_lock=lock_for(run.shop_id),
                lock=lock_for(run.shop_id),
                schedule_at=schedule_at,
                run_id=str(run.id),
                # Named so that what stops a shop's jobs (its uninstall) finds this one.
                shop_id=str(run.shop_id),
            )
    except AlreadyEnqueued:
        # A job of this shop is already waiting: it advances whatever run is current,
        # and runs now when now is asked (it may be waiting for its next look).
        if schedule_at is None:
            await bring_forward(session, lock_for(run.shop_id))


async def wake_for_bulk_operation(session: AsyncSession, shop: ShopifyShop, gid: str) -> bool:
    """``bulk_operations/finish``: the run waiting for that operation goes on now."""
    run = await session.scalar(
        select(ShopifySyncRun).where(
            ShopifySyncRun.shop_id == shop.id,
            ShopifySyncRun.bulk_operation_id == gid,
            ShopifySyncRun.status == SyncStatus.RUNNING,
        )
    )
    if run is None:
        return False
    await _defer(session, run)
    return True


# --- Advancing a run ------------------------------------------------------------------


async def advance(
    database: Database,
    settings: Settings,
    run_id: uuid.UUID,
    *,
    token: TokenSource,
    transport: httpx.AsyncBaseTransport | None = None,
    after_batch: AfterBatch | None = None,
    window: int = WINDOW,
) -> None:
    """Takes the run as far as it can go now; defers itself again while Shopify is still
    making the file. Retryable failures (Shopify unreachable, 5xx) are raised for the
    job's retry; the rest end the run as failed with the reason."""
    async with database.transaction() as session:
        run = await session.get(ShopifySyncRun, run_id, with_for_update=True)
        if run is None or run.status.finished:
            return
        shop = await session.get(ShopifyShop, run.shop_id)
        if shop is None or shop.status != ShopStatus.INSTALLED:
            _fail(run, "The shop is no longer connected.")
            return
        run.attempts += 1
        if run.started_at is None:
            run.started_at = now()
            await _prune_runs(session, shop.id)
        started = run.started_at
    try:
        access_token = await token(shop)
    except CybergineError as exc:
        if exc.status >= 500:  # Shopify unreachable: the job tries again later
            raise
        await _finish_failed(database, run_id, exc.detail)
        return
    try:
        async with AdminClient(settings, shop.shop_domain, access_token, transport=transport) as c:
            wait = await _step(database, settings, c, run_id, shop, started, after_batch, window)
    except AccessRevoked as exc:
        await _finish_failed(database, run_id, exc.message, token_revoked=True)
        return
    except AdminApiError as exc:
        if exc.retryable:
            await _note_error(database, run_id, exc.message)
            raise
        await _finish_failed(database, run_id, exc.message)
        return
    if wait is not None:
        async with database.transaction() as session:
            run = await session.get(ShopifySyncRun, run_id)
            assert run is not None
            await _defer(
                session, run, schedule_at=datetime.fromtimestamp(now().timestamp() + wait, UTC)
            )


async def _step(
    database: Database,
    settings: Settings,
    client: AdminClient,
    run_id: uuid.UUID,
    shop: ShopifyShop,
    started: datetime,
    after_batch: AfterBatch | None,
    window: int,
) -> float | None:
    async with database.transaction() as session:
        run = await _run(session, run_id)
        kind, operation_id = run.kind, run.bulk_operation_id
    if kind is SyncKind.CONTENT:
        await _sync_content(database, client, run_id, shop)
        await _complete(database, run_id)
        return None
    if operation_id is None:
        operation_id = await _start_bulk(database, client, run_id)
        if operation_id is None:
            return settings.shopify_bulk_poll_seconds
    answer = await client.query(queries.BULK_OPERATION, {"id": operation_id})
    operation = answer.get("node") or {}
    status = operation.get("status")
    if status in _UNFINISHED:
        return settings.shopify_bulk_poll_seconds
    if status != "COMPLETED":
        reason = operation.get("errorCode") or status or "UNKNOWN"
        await _finish_failed(database, run_id, f"Shopify's bulk operation ended {reason}.")
        return None
    async with database.transaction() as session:
        run = await _run(session, run_id)
        run.status = SyncStatus.APPLYING
        run.object_count = _int(operation.get("objectCount"))
    if operation.get("url"):
        await _apply_file(
            database, client, run_id, shop, str(operation["url"]), after_batch, window
        )
    async with database.transaction() as session:
        run = await _run(session, run_id)
        scope = TenantScope(session, shop.organisation_id)
        run.products_deleted = await batch.delete_products_not_written_since(
            scope, SYNC_ACTOR, started
        )
    await _sync_content(database, client, run_id, shop)
    await _complete(database, run_id)
    return None


async def _start_bulk(database: Database, client: AdminClient, run_id: uuid.UUID) -> str | None:
    """The new bulk operation's id; None when an operation a dead run left running had
    to be cancelled first (the run tries again after a poll interval)."""
    shop_answer = await client.query(queries.SHOP)
    currency = str((shop_answer.get("shop") or {}).get("currencyCode") or "USD")
    try:
        payload = await client.mutate(
            queries.BULK_OPERATION_RUN_QUERY,
            "bulkOperationRunQuery",
            {"query": queries.PRODUCTS_BULK},
        )
    except UserErrors as exc:
        if not any(e.get("code") == "OPERATION_IN_PROGRESS" for e in exc.errors):
            raise
        current = (await client.query(queries.CURRENT_BULK_OPERATION)).get(
            "currentBulkOperation"
        ) or {}
        if current.get("id") and current.get("status") in _UNFINISHED:
            await client.query(queries.BULK_OPERATION_CANCEL, {"id": current["id"]})
        return None
    operation_id = str((payload.get("bulkOperation") or {}).get("id"))
    async with database.transaction() as session:
        run = await _run(session, run_id)
        run.bulk_operation_id = operation_id
        run.currency = currency[:3]
        run.status = SyncStatus.RUNNING
    return operation_id


# --- Applying the file ------------------------------------------------------------------


class _Batch:
    def __init__(self) -> None:
        self.products: list[bulk_jsonl.ProductLines] = []
        self.late: list[bulk_jsonl.Late] = []
        self.bad: list[bulk_jsonl.BadLine] = []

    def __len__(self) -> int:
        return len(self.products) + len(self.late)


async def _apply_file(
    database: Database,
    client: AdminClient,
    run_id: uuid.UUID,
    shop: ShopifyShop,
    url: str,
    after_batch: AfterBatch | None,
    window: int,
) -> None:
    async with database.transaction() as session:
        run = await _run(session, run_id)
        skip, currency = run.lines_applied, run.currency or "USD"
    relinker = bulk_jsonl.Relinker(window)
    # Collections already written by this pass (a shop has few; its products share them).
    collections: set[str] = set()
    pending = _Batch()
    number = 0
    async for raw in client.stream_lines(url):
        number += 1
        if number <= skip:
            continue
        for out in relinker.feed(number, raw):
            if isinstance(out, bulk_jsonl.ProductLines):
                pending.products.append(out)
            elif isinstance(out, bulk_jsonl.Late):
                pending.late.append(out)
            else:
                pending.bad.append(out)
        if len(pending) >= BATCH_SIZE:
            oldest = relinker.oldest_pending_line()
            reached = oldest - 1 if oldest is not None else number
            await _write_batch(database, run_id, shop, currency, pending, reached, collections)
            pending = _Batch()
            if after_batch is not None:
                await after_batch(run_id, reached)
    pending.products.extend(relinker.finish())
    await _write_batch(database, run_id, shop, currency, pending, number, collections)


async def _write_batch(
    database: Database,
    run_id: uuid.UUID,
    shop: ShopifyShop,
    currency: str,
    pending: _Batch,
    reached: int,
    collections: set[str],
) -> None:
    errors: list[dict[str, Any]] = [{"line": b.line, "error": b.message} for b in pending.bad]
    drafts: list[ProductDraft] = []
    versions: dict[str, datetime] = {}
    for lines in pending.products:
        shaped = bulk_jsonl.rest_product(lines, currency=currency)
        try:
            draft = read_product(shaped)
        except InvalidInput as exc:
            errors.append({"line": lines.line, "product": shaped["id"], "error": exc.detail})
            continue
        drafts.append(draft)
        if (moment := parse_time(shaped.get("updated_at"))) is not None:
            versions[shaped["id"]] = moment
    async with database.transaction() as session:
        scope = TenantScope(session, shop.organisation_id)
        run = await _run(session, run_id, for_update=True)
        for lines in pending.products:
            for collection in bulk_jsonl.collections_of(lines):
                if collection["external_id"] not in collections:
                    await batch.write_collection(scope, **collection)
                    collections.add(collection["external_id"])
        await lock_objects(session, shop.id, SourceKind.PRODUCT, list(versions))
        current = await newer_versions(session, shop.id, SourceKind.PRODUCT, versions)
        fresh = [d for d in drafts if d.external_id not in current]
        written = await batch.write_products(scope, SYNC_ACTOR, fresh) if fresh else None
        # Products a webhook already brought newer, or the shop sent in a form we
        # refuse, stay as they are: not written, but not gone from the shop either.
        kept = [*current, *(str(e["product"]) for e in errors if "product" in e)]
        await batch.touch_products(scope, kept)
        await record_versions(
            session,
            shop,
            SourceKind.PRODUCT,
            {k: v for k, v in versions.items() if k not in current},
        )
        late_written = await _apply_late(scope, pending.late, currency)
        run.lines_applied = max(run.lines_applied, reached)
        run.products_written += (len(written.ids) if written else 0) + late_written
        run.products_failed += sum(1 for e in errors if "product" in e)
        if errors and len(run.errors) < KEPT_ERRORS:
            run.errors = [*run.errors, *errors][:KEPT_ERRORS]


async def _apply_late(scope: TenantScope, late: Sequence[bulk_jsonl.Late], currency: str) -> int:
    """Children that came after their product was written: added to the stored product
    (each once: a resumed run may meet them again)."""
    by_parent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in late:
        by_parent[bulk_jsonl.numeric_id(item.parent_id)].append(item.child)
    drafts: list[ProductDraft] = []
    for external_id, children in by_parent.items():
        product = await service.find_by_external_id(scope, external_id)
        if product is None:
            continue
        draft = service.draft_of(product)
        lines = bulk_jsonl.ProductLines(0, {"id": external_id})
        for child in children:
            lines.adopt(child)
        names = [o.name for o in draft.options]
        shaped = {
            "title": draft.title,
            "options": [{"name": o.name, "values": o.values} for o in draft.options],
            "variants": [bulk_jsonl.rest_variant(v, names) for v in lines.variants],
            "images": [bulk_jsonl.rest_image(m) for m in lines.media],
            "currency": currency,
        }
        try:
            extra = read_product(shaped)
        except InvalidInput:
            continue
        known = {(v.option1, v.option2, v.option3) for v in draft.variants}
        sources = {i.src for i in draft.images}
        collections = list(draft.collections or [])
        collections += [c["handle"] for c in bulk_jsonl.collections_of(lines)]
        drafts.append(
            replace(
                draft,
                options=extra.options if extra.options else draft.options,
                variants=[
                    *draft.variants,
                    *(v for v in extra.variants if (v.option1, v.option2, v.option3) not in known),
                ],
                images=[*draft.images, *(i for i in extra.images if i.src not in sources)],
                collections=list(dict.fromkeys(collections)),
            )
        )
    if not drafts:
        return 0
    return len((await batch.write_products(scope, SYNC_ACTOR, drafts)).ids)


# --- Versions ---------------------------------------------------------------------------


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _lock_key(shop_id: uuid.UUID, kind: SourceKind, external_id: str) -> int:
    digest = hashlib.blake2b(f"{shop_id}:{kind}:{external_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_objects(
    session: AsyncSession, shop_id: uuid.UUID, kind: SourceKind, external_ids: Sequence[str]
) -> None:
    """Transaction-scoped locks on these objects of the shop, taken in one order: a
    webhook and a sync batch writing the same product never interleave their version
    check and their write."""
    keys = sorted({_lock_key(shop_id, kind, e) for e in external_ids})
    if keys:
        await session.execute(
            text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
            {"keys": keys},
        )


async def newer_versions(
    session: AsyncSession, shop_id: uuid.UUID, kind: SourceKind, versions: dict[str, datetime]
) -> set[str]:
    """Of these objects, those we hold a newer version of (or know deleted since)."""
    if not versions:
        return set()
    rows = await session.execute(
        select(ShopifySourceVersion.external_id, ShopifySourceVersion.source_updated_at).where(
            ShopifySourceVersion.shop_id == shop_id,
            ShopifySourceVersion.kind == kind,
            ShopifySourceVersion.external_id.in_(list(versions)),
        )
    )
    return {external_id for external_id, held in rows if held > versions[external_id]}


async def record_versions(
    session: AsyncSession,
    shop: ShopifyShop,
    kind: SourceKind,
    versions: dict[str, datetime],
    *,
    deleted: bool = False,
) -> None:
    if not versions:
        return
    statement = pg_insert(ShopifySourceVersion).values(
        [
            {
                "id": uuid7(),
                "organisation_id": shop.organisation_id,
                "shop_id": shop.id,
                "kind": kind,
                "external_id": external_id,
                "source_updated_at": moment,
                "deleted": deleted,
            }
            for external_id, moment in versions.items()
        ]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["shop_id", "kind", "external_id"],
            set_={
                "source_updated_at": statement.excluded.source_updated_at,
                "deleted": statement.excluded.deleted,
            },
            where=ShopifySourceVersion.source_updated_at <= statement.excluded.source_updated_at,
        )
    )


# --- Content and the end of a run --------------------------------------------------------


async def _sync_content(
    database: Database, client: AdminClient, run_id: uuid.UUID, shop: ShopifyShop
) -> None:
    counts = await content.sync_content(database, client, shop)
    async with database.transaction() as session:
        run = await _run(session, run_id)
        run.documents_written = counts.written
        run.documents_removed = counts.removed


async def _complete(database: Database, run_id: uuid.UUID) -> None:
    async with database.transaction() as session:
        run = await _run(session, run_id)
        run.status = SyncStatus.COMPLETED
        run.error = None
        run.finished_at = now()
    log.info("shopify sync completed", run_id=str(run_id))


def _fail(run: ShopifySyncRun, reason: str) -> None:
    run.status = SyncStatus.FAILED
    run.error = reason[:SYNC_ERROR_LENGTH]
    run.finished_at = now()


async def _finish_failed(
    database: Database, run_id: uuid.UUID, reason: str, *, token_revoked: bool = False
) -> None:
    async with database.transaction() as session:
        run = await _run(session, run_id)
        _fail(run, reason)
        if token_revoked:
            # The token no longer works: forget it, so the shop shows as needing to
            # open the app again (which grants a new one) rather than failing forever.
            await session.execute(
                update(ShopifyShop)
                .where(ShopifyShop.id == run.shop_id)
                .values(access_token=None, access_token_expires_at=None)
            )
    log.warning("shopify sync failed", run_id=str(run_id), reason=reason)


async def _note_error(database: Database, run_id: uuid.UUID, reason: str) -> None:
    async with database.transaction() as session:
        run = await _run(session, run_id)
        run.error = reason[:SYNC_ERROR_LENGTH]


async def _run(
    session: AsyncSession, run_id: uuid.UUID, *, for_update: bool = False
) -> ShopifySyncRun:
    run = await session.get(
        ShopifySyncRun, run_id, with_for_update=for_update, populate_existing=True
    )
    if run is None:
        raise LookupError(f"sync run {run_id} is gone")
    return run


async def _prune_runs(session: AsyncSession, shop_id: uuid.UUID) -> None:
    kept = (
        select(ShopifySyncRun.id)
        .where(ShopifySyncRun.shop_id == shop_id)
        .order_by(ShopifySyncRun.created_at.desc())
        .limit(KEPT_RUNS)
    )
    await session.execute(
        ShopifySyncRun.__table__.delete().where(  # type: ignore[attr-defined]
            ShopifySyncRun.shop_id == shop_id, ShopifySyncRun.id.not_in(kept)
        )
    )


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
