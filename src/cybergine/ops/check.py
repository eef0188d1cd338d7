"""What must hold before the platform starts, each failure named with how to fix it.

``cybergine check`` runs all of it; ``serve`` and ``worker`` run the same checks but the
model endpoints' (those are tenants' settings: one tenant's broken URL must not stop the
platform) and refuse to start with the same list.

- every setting parses (``settings_problems``: pydantic's errors, by variable name);
- the secrets the configured features need are there, and the key file is readable
  (``configuration_problems``);
- the URLs the operator configured are absolute http(s) URLs;
- the database answers and is at the code's migration head (``database_problems``);
- the analytics database, when one is named, answers, is at the primary's migration and
  is a replica, or a primary said with a warning (``analytics_database_check``);
- the model base URLs tenants saved still pass the outbound-URL policy
  (``endpoint_problems``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import psycopg
from pydantic import ValidationError

from cybergine.db.migrate import head_revision
from cybergine.db.urls import libpq_url
from cybergine.egress import DestinationRefused, parse_url, policy_for
from cybergine.mail.smtp import SmtpConfig, SmtpConfigError
from cybergine.observability import tracing
from cybergine.privacy import keys
from cybergine.settings import Settings

CONNECT_TIMEOUT_SECONDS = 5
ENDPOINT_TIMEOUT_SECONDS = 10.0
OPENAI_HOST = "api.openai.com"


@dataclass(frozen=True)
class Problem:
    what: str  # a setting's variable, or "database", "key file", ...
    detail: str  # what is wrong, and what to do

    def __str__(self) -> str:
        return f"{self.what}: {self.detail}"


def settings_problems(error: ValidationError) -> list[Problem]:
    """Each setting that does not parse, by its environment variable (never its value)."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        name = "_".join(str(part) for part in item["loc"] if isinstance(part, str))
        problems.append(Problem(f"CYBERGINE_{name.upper()}", item["msg"]))
    return problems


def configuration_problems(settings: Settings) -> list[Problem]:
    """The keys, the secrets the configured features need, and the operator's URLs
    (the OpenTelemetry exporter's too, when traces are asked for)."""
    return [
        *_key_problems(settings),
        *_feature_problems(settings),
        *_url_problems(settings),
        *(Problem(what, detail) for what, detail in tracing.configuration_problems()),
    ]


def _key_problems(settings: Settings) -> list[Problem]:
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    encryption = settings.encryption_keys.get_secret_value() if settings.encryption_keys else None
    problems = []
    if not settings.embedded:
        for name, value in (
            ("CYBERGINE_SECRET_KEY", secret),
            ("CYBERGINE_ENCRYPTION_KEYS", encryption),
        ):
            if not value:
                problems.append(
                    Problem(
                        name,
                        "must be set when CYBERGINE_DATABASE_URL is set (generate it with "
                        "`cybergine keys generate`; keep it: stored data needs it)",
                    )
                )
    key_file = keys.key_file(settings)
    if settings.embedded and not (secret and encryption) and key_file.exists():
        try:
            keys.read_key_file(key_file)
        except keys.KeyConfigurationError as error:
            problems.append(Problem("key file", str(error)))
    if secret and encryption:
        try:
            keys.ServerKeys(
                secret_key=secret.encode(),
                encryption_keys=tuple(p.strip() for p in encryption.split(",") if p.strip()),
            )
        except keys.KeyConfigurationError as error:
            problems.append(Problem("keys", str(error)))
    return problems


def _feature_problems(settings: Settings) -> list[Problem]:
    problems = []
    if (settings.shopify_api_key is None) != (settings.shopify_api_secret is None):
        problems.append(
            Problem(
                "CYBERGINE_SHOPIFY_API_KEY / CYBERGINE_SHOPIFY_API_SECRET",
                "the Shopify app needs both its client id and its client secret",
            )
        )
    if (
        settings.embeddings == "openai"
        and settings.openai_api_key is None
        and _host(settings.openai_base_url) == OPENAI_HOST
    ):
        problems.append(
            Problem(
                "CYBERGINE_OPENAI_API_KEY",
                "CYBERGINE_EMBEDDINGS=openai with OpenAI's API needs a key",
            )
        )
    if settings.smtp_url is not None:
        try:
            SmtpConfig.from_url(settings.smtp_url.get_secret_value())
        except SmtpConfigError as error:
            problems.append(Problem("CYBERGINE_SMTP_URL", str(error)))
    if settings.behind_https and not settings.public_url.startswith("https://"):
        problems.append(
            Problem(
                "CYBERGINE_PUBLIC_URL",
                "must be an https:// address when CYBERGINE_BEHIND_HTTPS is set",
            )
        )
    return problems


def _url_problems(settings: Settings) -> list[Problem]:
    urls = {
        "CYBERGINE_PUBLIC_URL": settings.public_url,
        "CYBERGINE_OPENAI_BASE_URL": settings.openai_base_url,
        "CYBERGINE_WHATSAPP_GRAPH_URL": settings.whatsapp_graph_url,
        "CYBERGINE_SHOPIFY_ADMIN_URL": settings.shopify_admin_url.replace(
            "{shop}", "example.myshopify.com"
        ),
        "CYBERGINE_SHOPIFY_APP_BRIDGE_URL": settings.shopify_app_bridge_url,
    }
    problems = []
    for name, url in urls.items():
        try:
            parse_url(url)
        except DestinationRefused as refused:
            problems.append(Problem(name, str(refused)))
    return problems


def _host(url: str) -> str | None:
    try:
        return parse_url(url).host
    except DestinationRefused:
        return None


async def _revision(connection: psycopg.AsyncConnection[Any]) -> str | None:
    cursor = await connection.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
    if not (await cursor.fetchone() or (False,))[0]:
        return None
    cursor = await connection.execute("SELECT version_num FROM alembic_version")
    row = await cursor.fetchone()
    return str(row[0]) if row else None


def _unreachable(error: Exception) -> str:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"cannot be reached ({reason})"


async def database_problems(settings: Settings, url: str) -> list[Problem]:
    """The database answers, and (outside embedded mode, where `serve` migrates it) is at
    the code's migration head."""
    try:
        async with await psycopg.AsyncConnection.connect(
            libpq_url(url), connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True
        ) as connection:
            current = await _revision(connection)
    except (psycopg.Error, OSError) as error:
        return [Problem("database", _unreachable(error))]
    expected = head_revision()
    if current != expected and not settings.embedded:
        return [
            Problem(
                "database",
                f"is at migration {current or 'none'}, this version needs {expected}: run "
                "`cybergine migrate` (once, before starting the new version)",
            )
        ]
    return []


@dataclass(frozen=True)
class AnalyticsDatabaseCheck:
    """What ``CYBERGINE_ANALYTICS_DATABASE_URL`` names: problems stop a start, a warning
    is said and allowed."""

    problems: list[Problem]
    warning: str | None = None
    revision: str | None = None
    replica: bool | None = None  # pg_is_in_recovery(): a standby (read replica)


async def analytics_database_check(settings: Settings, url: str) -> AnalyticsDatabaseCheck:
    """The analytics database answers, is at the primary's (``url``) migration, and is a
    read replica; a primary named there is allowed (analytics read it in read-only
    transactions) but said as a warning: it takes no load off the primary, and its
    figures drift from the primary's as soon as they differ."""
    if settings.analytics_database_url is None:
        return AnalyticsDatabaseCheck([])
    what = "CYBERGINE_ANALYTICS_DATABASE_URL"
    try:
        async with await psycopg.AsyncConnection.connect(
            libpq_url(settings.analytics_database_url),
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            autocommit=True,
        ) as connection:
            revision = await _revision(connection)
            cursor = await connection.execute("SELECT pg_is_in_recovery()")
            replica = bool((await cursor.fetchone() or (False,))[0])
    except (psycopg.Error, OSError) as error:
        return AnalyticsDatabaseCheck(
            [Problem(what, f"the analytics database {_unreachable(error)}")]
        )
    try:
        async with await psycopg.AsyncConnection.connect(
            libpq_url(url), connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True
        ) as connection:
            expected: str | None = await _revision(connection)
    except (psycopg.Error, OSError):
        expected = revision  # the primary's own problem is listed by database_problems
    problems = []
    if revision != expected:
        problems.append(
            Problem(
                what,
                f"the analytics database is at migration {revision or 'none'}, the primary "
                f"at {expected or 'none'}: it must be a replica of the primary (a replica "
                "follows the primary's migrations by itself)",
            )
        )
    warning = None
    if not replica:
        warning = (
            f"{what}: names a database that is not a read replica (pg_is_in_recovery() is "
            "false): analytics read it in read-only transactions, but it takes no reads "
            "off a primary and a copy does not follow the primary"
        )
    return AnalyticsDatabaseCheck(problems, warning, revision, replica)


async def endpoint_problems(settings: Settings, url: str) -> list[Problem]:
    """The model base URLs assistants were given, checked again against the outbound-URL
    policy as it is configured now (an allow-list entry may have been removed)."""
    policy = policy_for(settings.outbound_allowed_hosts)
    async with await psycopg.AsyncConnection.connect(
        libpq_url(url), connect_timeout=CONNECT_TIMEOUT_SECONDS
    ) as connection:
        try:
            cursor = await connection.execute(
                "SELECT llm_base_url, count(*) FROM assistants WHERE llm_base_url IS NOT NULL "
                "GROUP BY llm_base_url ORDER BY llm_base_url"
            )
        except psycopg.errors.UndefinedTable:
            return []  # a new embedded database, which `serve` migrates: no assistant yet
        rows = await cursor.fetchall()
    problems = []
    for base_url, assistants in rows:
        try:
            async with asyncio.timeout(ENDPOINT_TIMEOUT_SECONDS):
                await policy.check(base_url)
        except (DestinationRefused, TimeoutError) as refused:
            reason = str(refused) or "no answer from the name service in time"
            problems.append(
                Problem(
                    "model endpoint",
                    f"{base_url} ({assistants} assistant(s)): {reason}",
                )
            )
    return problems


__all__ = [
    "AnalyticsDatabaseCheck",
    "Problem",
    "analytics_database_check",
    "configuration_problems",
    "database_problems",
    "endpoint_problems",
    "settings_problems",
]
