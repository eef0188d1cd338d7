"""Running the platform: ``serve``, ``worker``, ``migrate``, ``demo``, ``version``."""

from __future__ import annotations

import asyncio
import json
import signal
from types import FrameType
from typing import Annotated

import typer
import uvloop

from cybergine import priority, startup
from cybergine.cli.ops import ready_to_start
from cybergine.cli.root import DataDirOption, cli, database_url, load_keys, settings_for


def _exit_normally(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    data_dir: DataDirOption = None,
    whatsapp_simulator: Annotated[
        bool,
        typer.Option(
            help="Development: serve Meta's Graph API from a simulator in this process and "
            "chat as a WhatsApp customer at /dev/whatsapp (needs `cybergine demo`)."
        ),
    ] = False,
    shopify_simulator: Annotated[
        bool,
        typer.Option(
            help="Development: serve Shopify (admin, Admin API, App Bridge, webhooks) from a "
            "simulator under /_shopify in this process, with a stocked demo shop."
        ),
    ] = False,
) -> None:
    """Run the web server (dashboard, API, webhooks, widget).

    In embedded mode it starts the database, applies migrations and runs a job
    worker in the same process (set CYBERGINE_EMBEDDED_WORKER=false to run
    `cybergine worker` separately).
    """
    startup.loading()  # until the app has started (cybergine.startup)
    import uvicorn

    from cybergine.app import create_app
    from cybergine.observability import tracing
    from cybergine.observability.process import prepare as prepare_metrics
    from cybergine.web.draining import GracefulServer

    settings = settings_for(data_dir)
    # Refuses to start, listing every problem, as `cybergine check` would.
    url = ready_to_start(settings, "serve")
    prepare_metrics(settings, "web")
    tracing.configure("web")  # OTEL_EXPORTER_OTLP_ENDPOINT: traces on
    sandbox = None
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    if whatsapp_simulator:
        from cybergine.channels.whatsapp.sandbox import Sandbox

        sandbox = Sandbox(settings, f"http://{local}:{port}")
        settings = sandbox.start(settings)
    shopify_sandbox = None
    if shopify_simulator:
        from cybergine.shopify.simulator.sandbox import ShopifySandbox

        shopify_sandbox = ShopifySandbox(settings, f"http://{local}:{port}")
        settings = shopify_sandbox.start(settings)
        typer.echo(f"Shopify admin (simulated): {shopify_sandbox.admin_page}")
        # The embedded admin's first request: it connects the demo shop and syncs it.
        shopify_sandbox.open_app_when_ready("/shopify/api/status")
    app = create_app(settings, database_url=url)
    app.state.whatsapp_sandbox = sandbox
    served = shopify_sandbox.mount(app) if shopify_sandbox is not None else app
    # Uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with the
    # handler that was there before it. Make that handler a normal exit, so the
    # embedded database's exit hook runs and the last process stops the server.
    signal.signal(signal.SIGTERM, _exit_normally)
    config = uvicorn.Config(
        served,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # Forwarded headers are the app's to judge (CYBERGINE_TRUSTED_PROXIES,
        # cybergine.web.proxies), not uvicorn's, which believes any local peer.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        # Widget frames are small JSON: compression would buy nothing and costs
        # about 46 KB of memory per open socket.
        ws_per_message_deflate=False,
    )
    # SIGTERM: /readyz answers 503 for the drain period, then the server stops accepting
    # and lets requests in flight finish (cybergine.web.draining).
    server = GracefulServer(config, app.state.lifecycle, settings.shutdown_drain_seconds)
    try:
        server.run()
        if not server.started:
            raise typer.Exit(3)  # as uvicorn.run: the port was taken, or start-up failed
    finally:
        tracing.shutdown()  # the spans still buffered are exported
        if sandbox is not None:
            sandbox.stop()
        if shopify_sandbox is not None:
            shopify_sandbox.stop()


@cli.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (default: CYBERGINE_WORKER_CONCURRENCY).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run a job worker until interrupted (SIGINT/SIGTERM finish running jobs first).

    Its CPU priority is below the web server's (CYBERGINE_WORKER_NICE):
    where the two share a machine, requests are answered first.
    """
    startup.loading()  # until it is ready to take jobs (cybergine.startup)
    settings = settings_for(data_dir)
    # Before any thread starts, each taking the niceness of the thread that makes it:
    # before these imports too (numpy's BLAS starts its threads as it loads).
    priority.lower_to(settings.worker_nice)
    from cybergine.catalog.warm_up import warm_up
    from cybergine.db.engine import Database
    from cybergine.jobs import Worker
    from cybergine.knowledge.providers import embedding_provider
    from cybergine.observability import tracing
    from cybergine.observability.process import prepare as prepare_metrics

    url = ready_to_start(settings, "worker")  # refuses to start, as `cybergine check`
    prepare_metrics(settings, "worker")
    tracing.configure("worker")  # OTEL_EXPORTER_OTLP_ENDPOINT: traces on

    metrics_server = None
    if settings.metrics and settings.worker_metrics_port is not None:
        from cybergine.observability.worker_endpoint import WorkerMetricsServer

        metrics_server = WorkerMetricsServer(settings, settings.worker_metrics_port)
        metrics_server.start()

    async def main() -> None:
        database = Database(url, pool_size=settings.db_pool_size, pre_ping=False)
        try:
            # Replies search the catalogue: the model loaded and the search statements
            # prepared before the first job (cybergine.catalog.warm_up).
            await warm_up(
                database,
                embedding_provider(settings),
                connections=settings.search_warm_connections,
            )
            startup.loaded()
            await Worker(
                database,
                settings=settings,
                concurrency=concurrency or settings.worker_concurrency,
                heartbeat_seconds=settings.worker_heartbeat_seconds,
                stalled_after_seconds=settings.worker_stalled_after_seconds,
            ).run()
        finally:
            await database.dispose()

    # The web server runs on uvloop (uvicorn's choice); so does the worker, whose jobs
    # are many small database and HTTP round trips, each a few event-loop operations.
    try:
        uvloop.run(main())
    finally:
        tracing.shutdown()  # the spans still buffered are exported
        if metrics_server is not None:
            metrics_server.stop()


@cli.command()
def migrate(data_dir: DataDirOption = None) -> None:
    """Apply database migrations up to the latest revision."""
    from cybergine.db.migrate import current_revision

    settings = settings_for(data_dir)
    url = database_url(settings, migrate=True)
    typer.echo(f"database at migration {current_revision(url)}")


@cli.command()
def demo(data_dir: DataDirOption = None) -> None:
    """Seed the demo organisation (safe to run again: it changes nothing the second time)."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from cybergine.db import partitions
    from cybergine.db.engine import Database
    from cybergine.demo import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD, seed_demo
    from cybergine.demo_history import HISTORY_DAYS, seed_history

    settings = settings_for(data_dir)
    load_keys(settings)
    url = database_url(settings, migrate=True)

    async def main() -> None:
        database = Database(url, pool_size=1)
        now = datetime.now(UTC)
        try:
            # The partitions of the history's time, so its messages land in their own.
            await partitions.prepare(
                database,
                partitions.PARTITIONED["messages"],
                now,
                since=now - timedelta(days=HISTORY_DAYS + 1),
            )
            async with database.transaction() as session:
                seed = await seed_demo(session)
                # Weeks of past conversations, once, for the Analytics page.
                past = await seed_history(session, uuid.UUID(seed.organisation_id), now.date())
        finally:
            await database.dispose()
        verb = "created" if seed.created else "already present"
        typer.echo(f"Demo organisation {verb}: {seed.organisation_id}")
        if past:
            typer.echo(f"Demo history: {past} conversations over the last {HISTORY_DAYS} days")
        typer.echo(f"Dashboard: {settings.public_url}/ (once `cybergine serve` is running)")
        typer.echo(f"Demo sign-in: {DEMO_OWNER_EMAIL} / {DEMO_OWNER_PASSWORD}")

    asyncio.run(main())


@cli.command("version")
def version() -> None:
    """Print the version."""
    from cybergine import __version__

    typer.echo(json.dumps({"cybergine": __version__}))
