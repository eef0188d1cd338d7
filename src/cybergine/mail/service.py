"""Queue an e-mail: the row and its delivery job commit with the caller's transaction,
so an invitation never exists without its e-mail, nor an e-mail without its invitation."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.job_names import JobName
from cybergine.mail.models import OutboundEmail
from cybergine.queue import defer


async def queue_email(session: AsyncSession, *, to: str, subject: str, body: str) -> OutboundEmail:
    email = OutboundEmail(to_address=to, subject=subject, body_text=body)
    session.add(email)
    await session.flush()
    await defer(session, JobName.DELIVER_EMAIL, email_id=str(email.id))
    return email


async def list_outbox(session: AsyncSession, *, limit: int = 50) -> list[OutboundEmail]:
    """The newest e-mails, for the developer outbox (embedded mode only)."""
    result = await session.execute(
        select(OutboundEmail).order_by(OutboundEmail.id.desc()).limit(limit)
    )
    return list(result.scalars())


async def forget_recipient(session: AsyncSession, address: str) -> None:
    """Delete every e-mail to ``address`` (its owner was erased): queued ones too, whose
    delivery job then finds nothing to send."""
    await session.execute(delete(OutboundEmail).where(OutboundEmail.to_address == address))
