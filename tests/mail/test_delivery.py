"""E-mail goes out through SMTP when configured, and to the developer outbox when not."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr
from sqlalchemy import select, text

from cybergine.app import create_app
from cybergine.db.engine import Database
from cybergine.jobs import Worker
from cybergine.mail.models import EmailStatus, OutboundEmail
from cybergine.mail.service import queue_email
from cybergine.mail.smtp import SmtpConfig, SmtpConfigError
from cybergine.settings import Settings, load_settings
from tests.support.browser import Browser
from tests.support.server import LiveServer, free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


async def _queue(database: Database, to: str) -> uuid.UUID:
    async with database.transaction() as session:
        email = await queue_email(
            session,
            to=to,
            subject="Hello",
            body="Your link: http://127.0.0.1:8000/password/reset/abc",
        )
        return email.id


async def _email(database: Database, email_id: uuid.UUID) -> OutboundEmail:
    async with database.transaction() as session:
        return (
            await session.execute(select(OutboundEmail).where(OutboundEmail.id == email_id))
        ).scalar_one()


async def test_smtp_delivery_sends_once_and_erases_the_body(
    database: Database, settings: Settings, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    configured = settings.model_copy(
        update={"smtp_url": SecretStr(f"smtp+insecure://127.0.0.1:{port}")}
    )
    email_id = await _queue(database, "pat@example.com")
    await Worker(database, settings=configured).run(wait=False, install_signal_handlers=False)
    await Worker(database, settings=configured).run(wait=False, install_signal_handlers=False)

    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "pat@example.com"
    assert message["Subject"] == "Hello"
    assert "http://127.0.0.1:8000/password/reset/abc" in message.get_payload()
    email = await _email(database, email_id)
    assert email.status is EmailStatus.SENT
    assert email.body_text is None  # the single-use link is not kept


async def test_unreachable_smtp_server_is_retried_not_lost(
    database: Database, settings: Settings
) -> None:
    configured = settings.model_copy(
        update={"smtp_url": SecretStr(f"smtp+insecure://127.0.0.1:{free_port()}")}
    )
    email_id = await _queue(database, "pat@example.com")
    await Worker(database, settings=configured).run(wait=False, install_signal_handlers=False)
    email = await _email(database, email_id)
    assert email.status is EmailStatus.QUEUED
    assert email.body_text is not None
    async with database.transaction() as session:
        job = (
            await session.execute(
                text(
                    "SELECT status, attempts FROM procrastinate_jobs"
                    " WHERE task_name = 'mail:deliver_email'"
                )
            )
        ).one()
    assert job.status == "todo"
    assert job.attempts == 1


async def test_without_smtp_mail_goes_to_the_outbox(database: Database, settings: Settings) -> None:
    email_id = await _queue(database, "pat@example.com")
    await Worker(database, settings=settings).run(wait=False, install_signal_handlers=False)
    email = await _email(database, email_id)
    assert email.status is EmailStatus.OUTBOX
    assert email.body_text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://user:p%40ss@mail.example", ("mail.example", 587, "starttls", "user", "p@ss")),
        ("smtps://mail.example", ("mail.example", 465, "tls", None, None)),
        ("smtp+insecure://localhost:25", ("localhost", 25, "insecure", None, None)),
    ],
)
def test_smtp_urls(url: str, expected: tuple[object, ...]) -> None:
    config = SmtpConfig.from_url(url)
    assert (config.host, config.port, config.mode, config.username, config.password) == expected


@pytest.mark.parametrize("url", ["http://mail.example", "smtp://", "mail.example:25"])
def test_bad_smtp_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(SmtpConfigError, match="CYBERGINE_SMTP_URL"):
        SmtpConfig.from_url(url)


def test_outbox_is_hidden_outside_embedded_mode(browser: Browser) -> None:
    # The tests' live server runs with a database URL: not embedded, so no outbox.
    assert browser.get("/dev/outbox").status_code == 404


async def test_outbox_in_embedded_mode_shows_mail_to_this_machine_only(
    database: Database, database_url: str, tmp_path: Path, key_env: dict[str, str]
) -> None:
    embedded = load_settings(
        data_dir=tmp_path,
        secret_key=key_env["CYBERGINE_SECRET_KEY"],
        encryption_keys=key_env["CYBERGINE_ENCRYPTION_KEYS"],
    )
    assert embedded.embedded
    await _queue(database, "dev@example.com")
    app = create_app(embedded, database_url=database_url, run_worker=False)
    with LiveServer(app) as server, server.client(headers={"accept": "text/html"}) as client:
        local = client.get("/dev/outbox")
        remote = client.get("/dev/outbox", headers={"x-forwarded-for": "203.0.113.9"})
    assert local.status_code == 200
    assert "dev@example.com" in local.text
    assert '<a href="http://127.0.0.1:8000/password/reset/abc"' in local.text
    assert remote.status_code == 404


def _embedded_outbox(
    database_url: str, tmp_path: Path, key_env: dict[str, str], **overrides: object
) -> LiveServer:
    embedded = load_settings(
        data_dir=tmp_path,
        secret_key=key_env["CYBERGINE_SECRET_KEY"],
        encryption_keys=key_env["CYBERGINE_ENCRYPTION_KEYS"],
        **overrides,
    )
    assert embedded.embedded
    return LiveServer(create_app(embedded, database_url=database_url, run_worker=False))


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-forwarded-for", "127.0.0.1"),
        ("x-real-ip", "127.0.0.1"),
        ("forwarded", "for=127.0.0.1"),
        ("x-forwarded-host", "localhost"),
    ],
)
async def test_outbox_is_refused_to_a_request_through_a_proxy(
    database: Database,
    database_url: str,
    tmp_path: Path,
    key_env: dict[str, str],
    header: str,
    value: str,
) -> None:
    # A proxy on this machine makes every visitor's peer local: any forwarded header
    # means the request may come from anywhere.
    await _queue(database, "dev@example.com")
    with _embedded_outbox(database_url, tmp_path, key_env) as server, server.client() as client:
        assert client.get("/dev/outbox").status_code == 200
        proxied = client.get("/dev/outbox", headers={header: value})
    assert proxied.status_code == 404
    assert "dev@example.com" not in proxied.text


async def test_outbox_is_refused_when_the_peer_is_a_trusted_proxy(
    database: Database, database_url: str, tmp_path: Path, key_env: dict[str, str]
) -> None:
    await _queue(database, "dev@example.com")
    with (
        _embedded_outbox(database_url, tmp_path, key_env, trusted_proxies="127.0.0.1") as server,
        server.client() as client,
    ):
        assert client.get("/dev/outbox").status_code == 404


async def test_outbox_is_refused_once_smtp_is_configured(
    database: Database, database_url: str, tmp_path: Path, key_env: dict[str, str]
) -> None:
    await _queue(database, "dev@example.com")
    smtp = f"smtp+insecure://127.0.0.1:{free_port()}"
    with (
        _embedded_outbox(database_url, tmp_path, key_env, smtp_url=smtp) as server,
        server.client() as client,
    ):
        assert client.get("/dev/outbox").status_code == 404
