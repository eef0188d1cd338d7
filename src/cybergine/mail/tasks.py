"""Delivery of queued e-mail, and pruning of what was kept."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from datetime import UTC, datetime, timedelta

import procrastinate
import structlog
from sqlalchemy import delete, or_

from cybergine.job_names import JobName
from cybergine.mail import smtp
from cybergine.mail.models import EmailStatus, OutboundEmail
from cybergine.queue import DEFAULT_RETRY, job_session, job_settings

blueprint = procrastinate.Blueprint()
log = structlog.get_logger(__name__)

OUTBOX_KEPT = timedelta(days=7)
SENT_RECORD_KEPT = timedelta(days=30)


@blueprint.task(name=JobName.DELIVER_EMAIL.task, pass_context=True, retry=DEFAULT_RETRY)
async def deliver_email(context: procrastinate.JobContext, email_id: str) -> None:
    settings = job_settings(context)
    async with job_session(context) as session:
        email = await session.get(OutboundEmail, uuid.UUID(email_id), with_for_update=True)
        if email is None or email.status is not EmailStatus.QUEUED:
            return  # pruned, or already delivered by an earlier run
        if settings.smtp_url is None:
            email.status = EmailStatus.OUTBOX
            return
        message = smtp.build_message(
            sender=settings.email_from,
            to=email.to_address,
            subject=email.subject,
            body=email.body_text or "",
        )
        config = smtp.SmtpConfig.from_url(settings.smtp_url.get_secret_value())
        try:
            await asyncio.to_thread(smtp.send, config, message)
        except (OSError, smtp.SmtpConfigError, smtplib.SMTPException) as exc:
            log.warning("e-mail delivery failed", email_id=email_id, error=type(exc).__name__)
            if context.job.attempts + 1 >= DEFAULT_RETRY.max_attempts:
                email.status = EmailStatus.FAILED
                email.error = f"{type(exc).__name__}: {exc}"[:500]
                email.body_text = None
                return
            raise
        email.status = EmailStatus.SENT
        email.sent_at = datetime.now(UTC)
        email.body_text = None


@blueprint.periodic(cron="23 * * * *", periodic_id="prune_emails")
@blueprint.task(name="prune_emails", pass_context=True, queueing_lock="prune_emails")
async def prune_emails(context: procrastinate.JobContext, timestamp: int) -> None:
    now = datetime.now(UTC)
    async with job_session(context) as session:
        await session.execute(
            delete(OutboundEmail).where(
                or_(
                    (OutboundEmail.status == EmailStatus.OUTBOX)
                    & (OutboundEmail.created_at < now - OUTBOX_KEPT),
                    OutboundEmail.created_at < now - SENT_RECORD_KEPT,
                )
            )
        )
