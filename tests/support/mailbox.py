"""Reading the e-mails the platform queued, and the links in them."""

from __future__ import annotations

import re

from sqlalchemy import select

from cybergine.db.engine import Database
from cybergine.mail.models import OutboundEmail

_LINK = re.compile(r"https?://\S+")


async def emails_to(database: Database, address: str) -> list[OutboundEmail]:
    async with database.transaction() as session:
        result = await session.execute(
            select(OutboundEmail)
            .where(OutboundEmail.to_address == address)
            .order_by(OutboundEmail.id)
        )
        return list(result.scalars())


async def link_in_last_email(database: Database, address: str) -> str:
    """The path of the link in the newest e-mail to ``address``."""
    emails = await emails_to(database, address)
    assert emails, f"no e-mail to {address}"
    match = _LINK.search(emails[-1].body_text or "")
    assert match, "the e-mail has no link"
    return "/" + match.group(0).split("/", 3)[3]
