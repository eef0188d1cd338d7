"""The web application factory: the composition root of the HTTP side."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import APIRouter, FastAPI

from cybergine import __version__, startup
from cybergine.accounts import api as accounts_api
from cybergine.analytics import api as analytics_api
from cybergine.analytics.api_usage import ApiUsageMiddleware, ApiUsageRecorder
from cybergine.assistants import api as assistants_api
from cybergine.catalog import api as catalog_api
from cybergine.catalog.warm_up import warm_up
from cybergine.channels.adapters import register_channel_adapters
from cybergine.channels.webchat import api as webchat_api
from cybergine.channels.whatsapp import api as whatsapp_api
from cybergine.channels.whatsapp import webhooks as whatsapp_webhooks
from cybergine.channels.whatsapp.batcher import IngestBatcher
from cybergine.conversations import api as conversations_api
from cybergine.dashboard import demo_pages
from cybergine.dashboard.errors import render_error
from cybergine.dashboard.routes import routers as dashboard_routers
from cybergine.dashboard.templating import static_assets
from cybergine.db.engine import Database
from cybergine.jobs import Worker, run_until_cancelled
from cybergine.knowledge import api as knowledge_api
from cybergine.knowledge.extraction_share import ExtractionShares
from cybergine.knowledge.providers import (
    embedding_provider,
    extraction_processes,
    stop_extractions,
)
from cybergine.logging import configure_logging
from cybergine.observability import api as metrics_api
from cybergine.observability import metrics, tracing
from cybergine.observability.http import HttpMetricsMiddleware
from cybergine.onboarding import api as onboarding_api
from cybergine.privacy import api as privacy_api
from cybergine.privacy import keys
from cybergine.privacy import requests_api as privacy_requests_api
from cybergine.privacy import retention_api as privacy_retention_api
from cybergine.privacy.organisation_export import api as organisation_export_api
from cybergine.privacy_policy import api as privacy_policy_api
from cybergine.realtime.hub import Hub
from cybergine.runtime import resolve_database_url
from cybergine.settings import Settings
from cybergine.shopify import api as shopify_api
from cybergine.web import health, openapi, problems
from cybergine.web.draining import Lifecycle
from cybergine.web.head import HeadAsGetMiddleware
from cybergine.web.hygiene import InputHygieneMiddleware
from cybergine.web.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from cybergine.web.proxies import (
    ForwardedHeadersMiddleware,
    TrustedProxies,
    parse_trusted_proxies,
)

log = structlog.get_logger(__name__)


def _serve_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Serve the routers' routes as they are, in order, as ``include_router`` with nothing
    added (no prefix, dependencies or overrides) would.

    ``include_router`` derives every route again for each app it is given (its parameters,
    dependencies and response models analysed anew: about 0.2 s of CPU for our few hundred
    routes, paid by the first requests). The routes are the same for every app, and a
    process that builds many apps (the test suite builds one per test) would do that work
    each time; here it is done once, when the routers are defined. A route holds nothing of
    an app: what it needs of one it reads from the request."""
    for router in routers:
        app.router.routes.extend(router.routes)


def create_app(
    settings: Settings,
    *,
    database_url: str | None = None,
    run_worker: bool | None = None,
) -> FastAPI:
    """Build the app.

    ``database_url`` is the already-resolved URL (``serve`` starts the embedded server
    and migrates before building the app); without it the settings decide.
    ``run_worker`` defaults to: embedded mode and ``embedded_worker`` enabled.
    """
    configure_logging(settings.log_level, settings.log_format)
    metrics.enable(settings.metrics)
    keys.load(settings)
    register_channel_adapters()
    if run_worker is None:
        run_worker = settings.embedded and settings.embedded_worker

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url or resolve_database_url(settings)
        database = Database(
            url,
            pool_size=settings.db_pool_size,
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )
        app.state.database = database
        # Analytics read from a second database when one is named (a read replica,
        # cybergine.analytics.reading); it is not connected to until a figure is asked for.
        analytics_database = (
            Database(
                settings.analytics_database_url,
                pool_size=settings.db_pool_size,
                statement_timeout_ms=settings.db_statement_timeout_ms,
                application_name="cybergine-analytics",
            )
            if settings.analytics_database_url is not None
            else None
        )
        app.state.analytics_database = analytics_database
        await api_usage.start(database)
        hub = Hub(url)
        await hub.start()
        app.state.hub = hub
        lifecycle.on_close(hub.close_waiters)  # long polls, event streams and sockets end
        batcher = IngestBatcher(url, statement_timeout_ms=settings.db_statement_timeout_ms)
        await batcher.start()
        app.state.whatsapp_batcher = batcher
        extraction_processes(settings).start_server()
        # Product search ready before the first request (none is served, /readyz
        # included, until this returns): the query-embedding model loaded, connections
        # with the search statements prepared (cybergine.catalog.warm_up).
        await warm_up(
            database, embedding_provider(settings), connections=settings.search_warm_connections
        )
        worker_task: asyncio.Task[None] | None = None
        if run_worker:
            worker = Worker(
                database,
                settings=settings,
                concurrency=settings.worker_concurrency,
                heartbeat_seconds=settings.worker_heartbeat_seconds,
                stalled_after_seconds=settings.worker_stalled_after_seconds,
                name="serve-worker",
            )
            worker_task = asyncio.create_task(run_until_cancelled(worker))
        startup.loaded()  # the collector resumes, what was loaded is kept out of its passes
        log.info("cybergine started", version=__version__, in_process_worker=run_worker)
        try:
            yield
        finally:
            # A child reading a file neither outlives the server nor holds up its exit.
            stop_extractions()
            if worker_task is not None:
                worker_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker_task
            await batcher.stop()
            await hub.stop()
            await api_usage.stop()
            if analytics_database is not None:
                await analytics_database.dispose()
            await database.dispose()

    app = FastAPI(
        title="Cybergine",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # Swagger UI needs a CDN our CSP does not allow; the spec is served
        redoc_url=None,
    )
    app.state.settings = settings
    # Draining on SIGTERM (`cybergine serve`'s server sets it): /readyz then answers 503.
    lifecycle = Lifecycle()
    app.state.lifecycle = lifecycle
    # Calls made with API keys, queued by the middleware below and written in batches.
    api_usage = ApiUsageRecorder()
    app.state.api_usage = api_usage
    app.state.extraction_shares = ExtractionShares(
        seconds_per_minute=settings.extraction_share_seconds_per_minute,
        wait_seconds=settings.extraction_timeout_seconds,
    )
    problems.install(app, html=render_error)
    openapi.install(app)
    # The routers' own route objects become the app's (see _serve_routes).
    _serve_routes(
        app,
        health.router,
        metrics_api.router,
        accounts_api.router,
        knowledge_api.router,
        assistants_api.router,
        catalog_api.router,
        whatsapp_api.router,
        whatsapp_webhooks.router,
        shopify_api.webhook_router,
        shopify_api.sync_router,
        conversations_api.router,
        analytics_api.router,
        conversations_api.preview_router,
        privacy_api.router,
        privacy_requests_api.router,
        privacy_api.well_known,
        privacy_retention_api.router,
        privacy_policy_api.router,
        organisation_export_api.router,
        onboarding_api.router,
        webchat_api.router,
        demo_pages.router,
        *dashboard_routers,
    )
    app.mount("/static", static_assets, name="static")

    # Added innermost first: Starlette wraps each new middleware around the previous.
    if settings.metrics:
        # Innermost, around the router: it labels requests by the route matched.
        app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(InputHygieneMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(ApiUsageMiddleware, recorder=api_usage)
    app.add_middleware(RequestContextMiddleware)
    if tracing.enabled():
        # Outside the request log, so that its line carries the request's trace id.
        app.add_middleware(tracing.TracingMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.behind_https)
    trusted = TrustedProxies(parse_trusted_proxies(settings.trusted_proxies))
    app.add_middleware(ForwardedHeadersMiddleware, trusted=trusted)
    return app
