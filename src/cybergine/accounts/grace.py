"""An organisation during its deletion grace period (policy §11): read-only.

Its people can still sign in, read everything and download a whole-organisation export
(``privacy.organisation_export``), or cancel the deletion; nothing else is written and
its channels take no new messages. Written once: ``auth.authorize`` refuses every unsafe
request of a permission outside ``permissions.WRITABLE_DURING_DELETION_GRACE``, the web
chat refuses its sessions and the WhatsApp webhook acknowledges without storing.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import Organisation, OrganisationStatus
from cybergine.errors import CybergineError


class OrganisationClosing(CybergineError):
    """423 Locked: the request is fine, the organisation no longer takes changes."""

    status = 423
    type_slug = "organisation-pending-deletion"
    title = "Organisation scheduled for deletion"


def accepting(status: OrganisationStatus) -> bool:
    """Whether an organisation in ``status`` takes changes and new messages."""
    return status is OrganisationStatus.ACTIVE


async def erase_after(session: AsyncSession, organisation_id: uuid.UUID) -> datetime | None:
    """When the organisation is erased, if it is scheduled for deletion (else None)."""
    row = (
        await session.execute(
            select(Organisation.status, Organisation.erase_after).where(
                Organisation.id == organisation_id
            )
        )
    ).one_or_none()
    if row is None or accepting(row.status):
        return None
    return row.erase_after  # type: ignore[no-any-return]


async def refuse_writes_if_closing(session: AsyncSession, organisation_id: uuid.UUID) -> None:
    """Raises ``OrganisationClosing`` for a change to an organisation that is closing.

    A plain read, no row lock: a write that races the scheduling by a moment is one that
    happened just before it, and locking the organisation's row on every write would
    serialise them."""
    until = await erase_after(session, organisation_id)
    if until is not None:
        raise OrganisationClosing(
            "This organisation is scheduled for deletion on "
            f"{until:%d %B %Y %H:%M} UTC and is read-only until then. Owners can download "
            "its data (Settings, or POST /api/v1/organisation/export) or cancel the deletion.",
            erase_after=until.isoformat(),
        )


async def refuse_channel_if_closing(session: AsyncSession, organisation_id: uuid.UUID) -> None:
    """For a customer-facing channel: says only that the chat is closed, never why."""
    if await erase_after(session, organisation_id) is not None:
        raise OrganisationClosing("This chat is no longer available.")
