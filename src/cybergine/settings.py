"""Every setting of the platform, read once from the environment (prefix ``CYBERGINE_``).

The README lists these; keep the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cybergine.analytics.prices import ModelPrice, check_keys
from cybergine.db.urls import check_postgresql_url
from cybergine.egress import parse_allowed
from cybergine.priority import BACKGROUND_NICENESS
from cybergine.web.proxies import parse_trusted_proxies


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CYBERGINE_", env_file=None, extra="ignore", frozen=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments, then the environment: no .env file and no secrets directory is read,
        # and their sources, which walk every field even with nothing to read, would cost
        # a third of each load (every process start and every test's settings).
        return init_settings, env_settings

    # --- Database ---------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL (with pgvector) URL. Unset: start the embedded PostgreSQL.",
    )
    data_dir: Path = Field(
        default=Path("var"),
        description="Where the embedded PostgreSQL and other local state live.",
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    analytics_database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL the Analytics pages and API read from, in read-only "
        "transactions: a streaming read replica of the primary. Unset: the primary. "
        "Sign-in, permissions, writes and the inbox stay on the primary.",
    )

    # --- Web --------------------------------------------------------------------
    max_request_body_bytes: int = Field(
        default=25 * 1024 * 1024,
        ge=1024,
        description="Requests with a larger body are refused with 413.",
    )
    behind_https: bool = Field(
        default=False,
        description="Set when TLS terminates in front of the app: adds HSTS and Secure cookies.",
    )

    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The address people reach the dashboard at; used in links in e-mails.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated IP addresses or networks (CIDR) of the reverse proxies "
        "in front of the app. Only from these are X-Forwarded-For and X-Forwarded-Proto "
        "believed (the client is the right-most address not itself a trusted proxy). "
        "Empty: forwarded headers are ignored, and every client is its TCP peer.",
    )
    shutdown_drain_seconds: float = Field(
        default=0.0,
        ge=0,
        le=300,
        description="On SIGTERM, how long the web process keeps serving with `/readyz` "
        "answering 503, so a load balancer stops sending it traffic before it stops "
        "accepting connections; a second SIGTERM ends the wait.",
    )
    shutdown_timeout_seconds: int = Field(
        default=10,
        ge=1,
        le=3600,
        description="Longest the web process waits, once it stops accepting, for requests "
        "in flight to finish before it cuts them off.",
    )
    widget_long_poll_seconds: float = Field(
        default=25.0,
        gt=0,
        le=300,
        description="Longest the web chat widget's long poll (its fallback where sockets are "
        "blocked) is held open while there is nothing new.",
    )

    # --- E-mail ---------------------------------------------------------------------
    smtp_url: SecretStr | None = Field(
        default=None,
        description="smtp://user:password@host:587 (STARTTLS), smtps://… (TLS) or "
        "smtp+insecure://host:25. Unset: e-mail goes to the developer outbox.",
    )
    email_from: str = Field(default="Cybergine <no-reply@localhost>")

    # --- Knowledge base and AI providers --------------------------------------------
    embeddings: Literal["local", "openai", "none"] = Field(
        default="local",
        description="local: all-MiniLM-L6-v2 on this machine; openai: an OpenAI-compatible "
        "/v1/embeddings endpoint; none: lexical search only.",
    )
    embeddings_model: str = Field(
        default="text-embedding-3-small",
        description="Model asked for by the OpenAI-compatible embeddings endpoint.",
    )
    embedding_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="CPU threads per inference of the local model, per process. One is the "
        "most work per CPU second (replies' questions come one or a few at a time); more "
        "index a large document sooner on an otherwise idle machine.",
    )
    search_warm_connections: int = Field(
        default=4,
        ge=0,
        le=64,
        description="Connections `serve` and `worker` make ready for product search before "
        "they answer or take a job (the query model loaded, the search statements "
        "prepared). 0: none, and the first searches pay for it instead.",
    )
    openai_base_url: str = Field(
        default="https://api.openai.com/v1",
        description="Base URL of the OpenAI-compatible API (OpenAI, Azure, Ollama, vLLM, …).",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        description="Key sent to CYBERGINE_OPENAI_BASE_URL only; an assistant with a base URL "
        "of its own must have a key of its own.",
    )
    outbound_allowed_hosts: str = Field(
        default="",
        description="Destinations a tenant may point the platform at beyond public https "
        "hosts on port 443 (assistants' model base URLs; later shop and webhook URLs): "
        "comma-separated host names, addresses or CIDR networks, each with an optional "
        ":port, e.g. `ollama.lan:11434,10.0.0.0/8,[fd00::/8]`. Listed destinations may "
        "use plain http and, unless a port is given, any port. Empty: public https only.",
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="Largest knowledge-base file accepted.",
    )
    extraction_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Longest an uploaded file's text may take to read (each file is read in "
        "a process of its own, killed at this limit); also the longest a file waits for a "
        "free reader before the upload is refused as busy.",
    )
    extraction_memory_mb: int = Field(
        default=256,
        ge=16,
        le=65536,
        description="Memory the process reading one uploaded file may take beyond what it "
        "starts with (an address-space limit); a file that needs more is refused.",
    )
    extraction_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Uploaded files read at once per web process; more wait their turn. "
        "Each reader takes up to one CPU core (at a lower priority than the web process).",
    )
    extraction_share_seconds_per_minute: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Reading time one organisation may use per minute, per web process (also "
        "its largest burst); each file costs at least one second. Past it, uploads are "
        "refused with 429 and a Retry-After, so one tenant cannot keep the readers from "
        "the rest. An organisation's files are read one at a time.",
    )

    # --- WhatsApp Cloud API ----------------------------------------------------------
    whatsapp_graph_url: str = Field(
        default="https://graph.facebook.com/v23.0",
        description="Base URL of Meta's Graph API, version included; point it at a simulator "
        "in tests and demos.",
    )
    whatsapp_app_secret: SecretStr | None = Field(
        default=None,
        description="Meta app secret that signs webhooks; the default for numbers "
        "registered without their own.",
    )
    whatsapp_verify_token: SecretStr | None = Field(
        default=None,
        description="Token Meta echoes when subscribing the webhook; the default for "
        "numbers registered without their own.",
    )
    whatsapp_send_rate: float = Field(
        default=80.0,
        gt=0,
        description="Messages per second sent from one business number (Meta's default "
        "throughput is 80/s).",
    )
    whatsapp_max_media_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Largest inbound media file stored (Meta's own limit for video is 16 MB).",
    )

    # --- Shopify app ------------------------------------------------------------
    shopify_api_key: str | None = Field(
        default=None,
        description="The Shopify app's client id (shopify.app.toml's client_id); the `aud` "
        "of App Bridge session tokens.",
    )
    shopify_api_secret: SecretStr | None = Field(
        default=None,
        description="The Shopify app's client secret: signs session tokens and webhooks, "
        "and authenticates the token exchange.",
    )
    shopify_previous_api_secret: SecretStr | None = Field(
        default=None,
        description="The client secret before a rotation, still accepted on session tokens "
        "and webhooks until Shopify stops using it.",
    )
    shopify_admin_url: str = Field(
        default="https://{shop}",
        description="Origin of a shop's Admin API, `{shop}` standing for its myshopify.com "
        "domain; point it at the Shopify simulator in tests and demos.",
    )
    shopify_compliance_email: str = Field(
        default="legal@cybergine.com",
        description="Where the report of a Shopify customers/data_request goes: the "
        "compliance team that answers it within 30 days (privacy policy §8b).",
    )
    shopify_api_version: str = Field(
        default="2026-07",
        description="The pinned Admin API version (2026-07 or later: older versions hide "
        "collections built with Collection.sources).",
    )
    shopify_bulk_poll_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How often a sync looks whether Shopify finished its bulk operation, "
        "when the bulk_operations/finish webhook has not said so first.",
    )
    shopify_content_refresh_hours: float = Field(
        default=6.0,
        ge=0,
        description="How often a shop's pages, blog articles and policies are synced again "
        "into its knowledge base (Shopify sends no webhook for them); 0 turns it off.",
    )
    shopify_app_bridge_url: str = Field(
        default="https://cdn.shopify.com/shopifycloud/app-bridge.js",
        description="App Bridge's script, loaded first by the embedded admin page. Shopify "
        "requires its CDN's copy; tests and demos point it at the Shopify simulator's.",
    )
    shopify_test_charges: bool | None = Field(
        default=None,
        description="Whether subscriptions are created as Shopify test charges (nothing is "
        "billed). Unset: real charges only behind HTTPS (CYBERGINE_BEHIND_HTTPS), as a "
        "production platform Shopify reaches must be; test charges in development and demos.",
    )

    # --- Jobs -------------------------------------------------------------------
    embedded_worker: bool = Field(
        default=True,
        description="In embedded mode, `serve` also runs a job worker inside the server process.",
    )
    worker_concurrency: int = Field(default=8, ge=1, le=256)
    worker_nice: int = Field(
        default=BACKGROUND_NICENESS,
        ge=0,
        le=19,
        description="The niceness `cybergine worker` runs at (Unix, 0-19; cybergine.priority): "
        "on a machine it shares with a web process, webhooks and pages are answered first "
        "and jobs run on the CPU left; 0 keeps the priority it was started with.",
    )
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    worker_stalled_after_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A job whose worker sent no heartbeat for this long is run again.",
    )
    worker_connection_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Longest a worker waits for a database connection before it takes the "
        "database as lost (a restart, a fail-over) and starts again once it answers.",
    )
    worker_shutdown_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="On SIGTERM, how long a worker lets its running jobs finish; jobs still "
        "running then are stopped and put back in the queue for another worker.",
    )

    # --- Keys ---------------------------------------------------------------------
    secret_key: SecretStr | None = Field(
        default=None,
        description="HMAC key for the audit chain and CSRF tokens (at least 32 bytes).",
    )
    encryption_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated Fernet keys; the first encrypts, all decrypt.",
    )

    # --- Logging ----------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    # --- Metrics ----------------------------------------------------------------
    metrics: bool = Field(
        default=True,
        description="Prometheus metrics at `/metrics` on the main port; `off` records "
        "nothing and answers 404 there.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token `/metrics` asks of clients beyond this machine (loopback "
        "clients need none). Unset: only loopback clients get the metrics.",
    )
    metrics_dir: Path | None = Field(
        default=None,
        description="Where the processes of one host (`serve`, `worker`) keep their metric "
        "values for `/metrics` to add up. Unset: `<data dir>/metrics`.",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="`cybergine worker` serves its host's `/metrics` on this port (all "
        "interfaces, the same loopback-or-token rule), for hosts without a web process. "
        "Unset: it serves none.",
    )

    # --- Privacy ----------------------------------------------------------------
    organisation_deletion_grace_days: int = Field(
        default=30,
        ge=0,
        description="Policy §11: days between an organisation's deletion and its erasure.",
    )
    retention_purge_rest_busy: float = Field(
        default=19.0,
        ge=0,
        le=1000,
        description="After each batch, the retention purge rests this many times as long as "
        "the batch took while replies wait for a worker (19: it works a twentieth of the "
        "time beside them).",
    )
    retention_purge_rest_idle: float = Field(
        default=0.25,
        ge=0,
        le=1000,
        description="The same rest while no reply waits (0.25: it works four fifths of the time).",
    )

    # --- Analytics ---------------------------------------------------------------
    analytics_idle_resolution_hours: float = Field(
        default=24,
        gt=0,
        le=30 * 24,
        description="A conversation with no message either way for this long counts as "
        "resolved (see the README's analytics definitions); after a change, run "
        "`cybergine analytics rebuild` so history follows.",
    )
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="JSON: each model's price per million tokens, keyed 'provider/model', "
        'e.g. {"openai/gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}; a dated '
        "snapshot the server reports (gpt-4o-mini-2024-07-18) takes its model's price. "
        "Empty: costs are unknown (shown as such, never as 0).",
    )
    model_price_currency: str = Field(
        default="USD",
        min_length=3,
        max_length=3,
        pattern="^[A-Z]{3}$",
        description="ISO 4217 code of the currency the model prices are in.",
    )

    # --- Security monitoring (policy §12) -----------------------------------------
    security_alert_window_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="The window the thresholds below count in; each alert once per window.",
    )
    security_alert_failed_sign_ins: int = Field(
        default=10, ge=1, description="Failed sign-ins to one account in a window."
    )
    security_alert_permission_denials: int = Field(
        default=20, ge=1, description="Requests refused for their role in one organisation."
    )
    security_alert_signature_failures: int = Field(
        default=20, ge=1, description="WhatsApp webhooks refused for one number's signature."
    )
    security_alert_exports_and_erasures: int = Field(
        default=25, ge=1, description="Customers exported or erased in one organisation."
    )

    @field_validator("model_prices")
    @classmethod
    def _valid_price_keys(cls, value: dict[str, ModelPrice]) -> dict[str, ModelPrice]:
        check_keys(value)  # a typo stops the start, with the key named
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("outbound_allowed_hosts")
    @classmethod
    def _valid_allow_list(cls, value: str) -> str:
        parse_allowed(value)  # a typo stops the start, with the entry named
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_trusted_proxies(cls, value: str) -> str:
        parse_trusted_proxies(value)  # a typo stops the start, with the entry named
        return value

    @field_validator("database_url", "analytics_database_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("analytics_database_url")
    @classmethod
    def _postgresql_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_postgresql_url(value)  # a typo stops the start, the password unsaid
        return value

    @property
    def embedded(self) -> bool:
        """True when the platform runs its own PostgreSQL from ``data_dir``."""
        return self.database_url is None


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
