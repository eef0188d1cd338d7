"""Sending one message over SMTP, configured by a URL.

``smtp://user:pass@host:587`` uses STARTTLS when the server offers it (and requires it
when credentials are given); ``smtps://`` is TLS from the first byte; ``smtp+insecure://``
sends in clear text, for a relay on the same host only.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit


class SmtpConfigError(ValueError):
    pass


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    mode: str  # "starttls" | "tls" | "insecure"
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        modes = {"smtp": "starttls", "smtps": "tls", "smtp+insecure": "insecure"}
        if parts.scheme not in modes or not parts.hostname:
            raise SmtpConfigError(
                "CYBERGINE_SMTP_URL must look like smtp://user:password@host:587 "
                "(or smtps://, or smtp+insecure:// for a local relay)"
            )
        default_port = 465 if parts.scheme == "smtps" else 587
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            mode=modes[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def build_message(*, sender: str, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip("> "))
    message.set_content(body)
    return message


def send(config: SmtpConfig, message: EmailMessage, *, timeout: float = 30) -> None:
    """Blocking; call it from a thread."""
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if config.mode == "tls":
        client = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=timeout)
    with client:
        client.ehlo()
        if config.mode == "starttls":
            if client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            elif config.username:
                raise SmtpConfigError(
                    "the SMTP server does not offer STARTTLS; refusing to send a password in clear"
                )
        if config.username and config.password is not None:
            client.login(config.username, config.password)
        client.send_message(message)
