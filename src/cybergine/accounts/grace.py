"""An organisation during its deletion grace period (policy §11): read-only.

Its people can still sign in, read everything and download a whole-organisation export
(``privacy.organisation_export``), or cancel the deletion; nothing else is written and
its channels take no new messages. Written once: ``auth.authorize`` refuses every unsafe
request of a permission outside ``permissions.WRITABLE_DURING_DELETION_GRACE``, the web
chat refuses its sessions and the WhatsApp webhook acknowledges without storing. Nothing
goes out either, not even what was queued before: the reply verdict
(``conversations.replies``) answers no message of an organisation that is not
:func:`accepting`, and the WhatsApp delivery claim fails a queued message with the
reason; cancelling the deletion lets the assistant answer again.

An organisation whose Shopify shop uninstalled the app (policy §8b: a soft delete at
once) is hidden instead: every request of its people and API keys is refused with
``ShopUninstalled`` (403), and its channels are closed as above, until the app is
installed again or Shopify's ``shop/redact`` erases it.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import Organisation, OrganisationStatus
from cybergine.errors import CybergineError


class OrganisationClosing(CybergineError):
    """423 Locked: the request is fine, the organisation no longer takes changes."""

    status = 423
    type_slug = "organisation-pending-deletion"
    title = "Organisation scheduled for deletion"


class ShopUninstalled(CybergineError):
    """403: the organisation's data is hidden since its Shopify shop uninstalled the app."""

    status = 403
    type_slug = "shop-uninstalled"
    title = "The shop uninstalled the app"


def visible(status: OrganisationStatus) -> bool:
    """Whether an organisation in ``status`` shows its data to its people and API keys."""
    return status is not OrganisationStatus.SHOP_UNINSTALLED


def accepting(status: OrganisationStatus) -> bool:
    """Whether an organisation in ``status`` takes changes and new messages."""
    return status is OrganisationStatus.ACTIVE


async def accepting_work(session: AsyncSession, organisation_id: uuid.UUID) -> bool:
    """Whether the organisation's background work (indexing its knowledge, embedding its
    products) runs: only while it is active. A job for one that is closing, hidden or
    gone ends without doing anything; what it left waits for
    ``accounts.resumed_work.resume_background_work`` when the organisation is active
    again."""
    status = await session.scalar(
        select(Organisation.status).where(Organisation.id == organisation_id)
    )
    return status is not None and accepting(status)


async def refuse_if_closed(
    session: AsyncSession, organisation_id: uuid.UUID, *, writing: bool
) -> None:
    """Raises ``ShopUninstalled`` for any request to an organisation whose shop uninstalled
    the app, and ``OrganisationClosing`` for a change (``writing``) to one that is closing.

    A plain read, no row lock: a write that races the scheduling by a moment is one that
    happened just before it, and locking the organisation's row on every write would
    serialise them."""
    row = (
        await session.execute(
            select(Organisation.status, Organisation.erase_after).where(
                Organisation.id == organisation_id
            )
        )
    ).one_or_none()
    if row is None:
        return
    if not visible(row.status):
        raise ShopUninstalled(
            "This organisation's Shopify shop uninstalled the Cybergine app, so its data is "
            "hidden. Installing the app again from the shop's admin brings it back; otherwise "
            "Shopify asks for it to be erased 48 hours after the uninstall."
        )
    until = row.erase_after if row.status is OrganisationStatus.PENDING_DELETION else None
    if writing and until is not None:
        raise OrganisationClosing(
            "This organisation is scheduled for deletion on "
            f"{until:%d %B %Y %H:%M} UTC and is read-only until then. Owners can download "
            "its data (Settings, or POST /api/v1/organisation/export) or cancel the deletion.",
            erase_after=until.isoformat(),
        )


async def refuse_channel_if_closing(session: AsyncSession, organisation_id: uuid.UUID) -> None:
    """For a customer-facing channel: says only that the chat is closed, never why
    (closing, or hidden since its shop uninstalled the app)."""
    status = await session.scalar(
        select(Organisation.status).where(Organisation.id == organisation_id)
    )
    if status is not None and not accepting(status):
        raise OrganisationClosing("This chat is no longer available.")
