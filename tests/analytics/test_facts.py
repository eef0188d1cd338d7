"""Each conversation's row of figures (``analytics_conversations``): the refresh rewrites
the rows of the conversations that changed and no other; distinct customers are counted
from the rows exactly, across channels, assistants and the edges of the periods."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from cybergine.analytics import rollups
from cybergine.conversations.models import Channel, Conversation, ConversationState, Customer
from cybergine.db.engine import Database
from tests.analytics.conftest import Seeded, measure, refresh
from tests.support.conversations import make_conversation, make_customer, make_message


async def _versions(database: Database, organisation_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """Each row's physical version (``xmin``): it changes only when the row is rewritten."""
    async with database.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT conversation_id, xmin::text FROM analytics_conversations"
                " WHERE organisation_id = :o"
            ),
            {"o": organisation_id},
        )
        return {row[0]: row[1] for row in rows}


async def test_a_refresh_right_after_another_rewrites_nothing(
    seeded: Seeded, database: Database
) -> None:
    """Every conversation is within the look-back of the seeding's refresh, but none of
    their rows changed since its figures were computed."""
    async with database.transaction() as session:
        stale = await rollups.stale_organisations(session, measure())
    assert seeded.known.organisation_id not in stale  # the sweep defers no refresh
    before = await _versions(database, seeded.known.organisation_id)
    assert await refresh(database, seeded.known) == 0
    assert await _versions(database, seeded.known.organisation_id) == before


async def test_the_refresh_rewrites_only_the_rows_of_changed_conversations(
    seeded: Seeded, database: Database
) -> None:
    organisation_id = seeded.known.organisation_id
    # Past the look-back of the seeding's refresh: nothing has changed since.
    async with database.transaction() as session:
        await session.execute(
            text(
                "UPDATE analytics_refresh_marks SET refreshed_until = now()"
                " WHERE organisation_id = :o"
            ),
            {"o": organisation_id},
        )
        await session.execute(
            text(
                "UPDATE conversations SET updated_at = now() - interval '1 hour'"
                " WHERE organisation_id = :o"
            ),
            {"o": organisation_id},
        )
    before = await _versions(database, organisation_id)
    assert set(before) == set(seeded.known.conversations.values())

    c4 = seeded.known.conversations["C4"]
    async with database.transaction() as session:
        conversation = await session.get_one(Conversation, c4)
        await make_message(session, conversation, created_at=datetime.now(UTC))
        conversation.updated_at = datetime.now(UTC)
    await refresh(database, seeded.known)

    after = await _versions(database, organisation_id)
    assert {id for id in before if before[id] != after[id]} == {c4}
    async with database.transaction() as session:
        messages_in = await session.scalar(
            text("SELECT messages_in FROM analytics_conversations WHERE conversation_id = :c"),
            {"c": c4},
        )
    assert messages_in == 2


def _customers(seeded: Seeded, first: datetime, last: datetime, **filters: Any) -> tuple[int, int]:
    response = seeded.api.get(
        "/api/v1/analytics/summary",
        params={"from": first.date().isoformat(), "to": last.date().isoformat(), **filters},
    )
    assert response.status_code == 200, response.text
    figure = response.json()["figures"]["unique_customers"]
    return figure["value"], figure["previous"]


async def test_distinct_customers_are_counted_exactly(seeded: Seeded, database: Database) -> None:
    """Far from the known history (three weeks after it), in days D-7..D-1 (previous)
    and D..D+6 (current): customer U begins a conversation with A on D-2, with A on D,
    with B on D+1 and with A again on D+1 at the same instant as the B one; customer V
    (web chat) on D+3 twice with B; customer W on D-5 only; customer X with A on D-1 at
    10:00 and on D+2; customer Y with A on D-1 at 21:00."""
    organisation_id = seeded.known.organisation_id
    a, b = seeded.known.assistant_a, seeded.known.assistant_b
    day = datetime.combine(seeded.known.last, datetime.min.time(), UTC) + timedelta(days=21)
    async with database.transaction() as session:
        u = await make_customer(session, organisation_id)
        v = await make_customer(session, organisation_id, channel=Channel.WEBCHAT)
        w = await make_customer(session, organisation_id)

        async def begin(customer: Customer, assistant: uuid.UUID, at: datetime) -> None:
            # Closed: a customer has one open conversation at most.
            await make_conversation(
                session,
                organisation_id,
                customer=customer,
                assistant_id=assistant,
                created_at=at,
                state=ConversationState.CLOSED,
                closed_at=at + timedelta(minutes=5),
            )

        await begin(u, a, day - timedelta(days=2))
        await begin(u, a, day)
        await begin(u, b, day + timedelta(days=1, hours=3))
        await begin(u, a, day + timedelta(days=1, hours=3))
        await begin(v, b, day + timedelta(days=3))
        await begin(v, b, day + timedelta(days=3, hours=1))
        await begin(w, a, day - timedelta(days=5))
        x = await make_customer(session, organisation_id)
        await begin(x, a, day - timedelta(hours=14))
        await begin(x, a, day + timedelta(days=2))
        y = await make_customer(session, organisation_id)
        await begin(y, a, day - timedelta(hours=3))
    await refresh(database, seeded.known)

    last = day + timedelta(days=6)
    assert _customers(seeded, day, last) == (3, 4)  # U, V, X; U, W, X, Y
    assert _customers(seeded, day, last, assistant_id=str(a)) == (2, 4)  # U, X; U, W, X, Y
    assert _customers(seeded, day, last, assistant_id=str(b)) == (2, 0)  # U, V
    assert _customers(seeded, day, last, channel="webchat") == (1, 0)  # V
    # One day: D+1 alone has U once, though U has two conversations in it; D has U,
    # whose conversation of D-2 is outside the previous day.
    assert _customers(seeded, day + timedelta(days=1), day + timedelta(days=1)) == (1, 1)
    assert _customers(seeded, day - timedelta(days=2), day - timedelta(days=2)) == (1, 0)
    # In Dubai (UTC+4) the week begins at 20:00 UTC the day before D: Y (21:00 UTC) is
    # in it; X's first conversation (10:00 UTC that day) is before it, in the part of a
    # day the daily counts cannot split; X counts once in each week all the same.
    dubai = {"timezone": "Asia/Dubai"}
    assert _customers(seeded, day, last, **dubai) == (4, 3)  # U, V, X, Y; U, W, X
    assert _customers(seeded, day, last, assistant_id=str(a), **dubai) == (3, 3)
    # D+2 in Dubai: X (D+2 00:00 UTC); the day before: U (D+1 03:00 UTC).
    assert _customers(seeded, day + timedelta(days=2), day + timedelta(days=2), **dubai) == (1, 1)
