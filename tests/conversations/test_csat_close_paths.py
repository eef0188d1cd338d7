"""Every way a conversation closes, and whether it asks for a rating (``conversations.csat``).

There are two: a person closes it (``inbox.close``, from the inbox; it asks, tested in
``test_csat_rules`` and end to end on both channels in ``tests/channels``), and the
customer's erasure closes theirs for good (it never asks: they are erased). A
conversation idle past ``CYBERGINE_ANALYTICS_IDLE_RESOLUTION_HOURS`` counts as resolved
in the analytics but stays open, so nothing asks. A new way of closing must decide
whether it asks: the source scan below fails until it is listed here."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from cybergine.accounts.models import Role
from cybergine.accounts.principal import Principal
from cybergine.assistants.models import Assistant
from cybergine.conversations.csat_models import CsatSurvey
from cybergine.conversations.models import Channel, Conversation, ConversationState
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.privacy.erasure import erase_customer
from tests.support.conversations import make_conversation, make_customer
from tests.support.factories import make_organisation

SOURCE = Path(__file__).resolve().parents[2] / "src" / "cybergine"
# A write of the closed state: an assignment or keyword, or SQL setting it.
_CLOSES = re.compile(r"state\s*=\s*(ConversationState\.CLOSED|'closed')")
CLOSERS = {
    "conversations/inbox.py": "a person closes it: asks (csat.send_survey)",
    "privacy/erasure.py": "the customer's erasure: never asks",
    "demo_history.py": "the demo's past conversations, written closed with their surveys",
}


def test_every_close_is_one_of_the_known_ones() -> None:
    found = {
        str(path.relative_to(SOURCE))
        for path in SOURCE.rglob("*.py")
        if "migrations" not in path.parts and _CLOSES.search(path.read_text(encoding="utf-8"))
    }
    assert found == set(CLOSERS), (
        "a conversation closes somewhere new: decide whether it asks for a rating "
        "(csat.send_survey) and list it in CLOSERS"
    )


async def test_an_erasures_close_asks_nothing(database: Database) -> None:
    organisation, owner = await make_organisation(database)
    async with database.transaction() as session:
        scope = TenantScope(session, organisation.id)
        assistant = scope.add(Assistant(name="Mia", languages=["en"], csat_enabled=True))
        await session.flush()
        customer = await make_customer(session, organisation.id, channel=Channel.WEBCHAT)
        conversation = await make_conversation(
            session,
            organisation.id,
            customer=customer,
            assistant_id=assistant.id,
            last_inbound_at=datetime.now(UTC),
        )
        erased = await erase_customer(
            scope, Principal(organisation.id, Role.OWNER, user_id=owner.id), customer.id
        )
        assert erased.conversations_closed == 1
    async with database.transaction() as session:
        closed = await session.get_one(Conversation, conversation.id)
        assert closed.state == ConversationState.CLOSED
        assert await session.scalar(select(func.count()).select_from(CsatSurvey)) == 0
