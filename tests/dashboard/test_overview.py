"""The Overview: a getting-started checklist that ticks itself from what the organisation
really has, and today's numbers, counted right on hand-built conversations."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, update

from cybergine.accounts.models import Invitation, Role
from cybergine.assistants.models import Assistant
from cybergine.conversations.activity import start_of_day, today_numbers
from cybergine.conversations.models import (
    Channel,
    Conversation,
    ConversationState,
    Direction,
    Message,
    MessageStatus,
    Sender,
)
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.models import Collection, Item, ItemKind, ItemStatus
from cybergine.onboarding.service import TRIED_ACTION
from cybergine.privacy.audit import AuditEvent
from tests.support.browser import Browser
from tests.support.conversations import (
    make_conversation,
    make_message,
    make_whatsapp_number,
)
from tests.support.factories import PASSWORD, add_member, make_api_key, make_organisation
from tests.support.server import LiveServer

STEPS = ["assistant", "knowledge", "try", "live", "team"]
_STEP = re.compile(
    r'<li class="checklist-step( done)?" data-step="(\w+)">\s*.*?<a href="([^"]+)"', re.S
)


def _steps(page: str) -> dict[str, tuple[bool, str]]:
    """Each step's state and link, as the page shows them."""
    return {key: (bool(done), url) for done, key, url in _STEP.findall(page)}


def _done(browser: Browser) -> set[str]:
    page = browser.get("/")
    assert page.status_code == 200
    return {key for key, (done, _) in _steps(page.text).items() if done}


async def _add_assistant(database: Database, organisation_id: uuid.UUID) -> uuid.UUID:
    async with database.transaction() as session:
        assistant = TenantScope(session, organisation_id).add(Assistant(name="Mia"))
        await session.flush()
        return assistant.id


async def _add_item(database: Database, organisation_id: uuid.UUID, status: ItemStatus) -> None:
    async with database.transaction() as session:
        scope = TenantScope(session, organisation_id)
        collection = (
            await session.execute(scope.select(Collection))
        ).scalar_one_or_none() or scope.add(Collection(name="default"))
        await session.flush()
        scope.add(
            Item(
                collection_id=collection.id,
                kind=ItemKind.QA,
                question="Do you ship to Canada?",
                body="Yes, in 5 to 7 days.",
                status=status,
            )
        )


async def test_each_step_ticks_itself_when_it_becomes_true(
    browser: Browser, live_server: LiveServer, database: Database
) -> None:
    organisation, owner = await make_organisation(database, name="Corner Shop")
    browser.sign_in(owner.email, PASSWORD)
    page = browser.get("/")
    assert "Get started" in page.text
    assert "0 of 5 steps done" in page.text
    steps = _steps(page.text)
    assert list(steps) == STEPS
    assert steps["assistant"] == (False, "/assistants")
    assert steps["knowledge"] == (False, "/knowledge")
    assert steps["try"] == (False, "/assistants")  # no assistant to try yet
    assert steps["live"] == (False, "/channels")
    assert steps["team"] == (False, "/team")
    assert "You are owner here." in page.text

    assistant_id = await _add_assistant(database, organisation.id)
    assert _done(browser) == {"assistant"}
    assert _steps(browser.get("/").text)["try"][1] == f"/assistants/{assistant_id}#try-it"

    # Knowledge that is still being read does not count; ready knowledge does.
    await _add_item(database, organisation.id, ItemStatus.PROCESSING)
    assert _done(browser) == {"assistant"}
    await _add_item(database, organisation.id, ItemStatus.READY)
    assert _done(browser) == {"assistant", "knowledge"}

    # Trying it (the Try-it panel's API) is remembered once, in the audit log.
    key = await make_api_key(database, organisation.id, Role.ADMIN)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        for question in ("Do you ship to Canada?", "And to Mexico?"):
            tried = api.post(f"/api/v1/assistants/{assistant_id}/preview", json={"text": question})
            assert tried.status_code == 200, tried.text
    assert _done(browser) == {"assistant", "knowledge", "try"}
    async with database.transaction() as session:
        events = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.organisation_id == organisation.id, AuditEvent.action == TRIED_ACTION)
        )
    assert events == 1

    # A widget that lists no site is nowhere yet; one site puts it live.
    async with database.transaction() as session:
        await session.execute(
            update(Assistant)
            .where(Assistant.id == assistant_id)
            .values(allowed_origins=["https://corner.example"])
        )
    assert _done(browser) == {"assistant", "knowledge", "try", "live"}

    # An expired invitation is not a team; a pending one is.
    async with database.transaction() as session:
        TenantScope(session, organisation.id).add(
            Invitation(
                email="late@example.com",
                role=Role.AGENT,
                token_hash=uuid.uuid4().hex,
                expires_at=datetime.now(UTC) - timedelta(days=1),
            )
        )
    assert "team" not in _done(browser)
    invited = browser.post(
        "/team/invite", {"email": "sam@example.com", "role": "agent"}, csrf_from="/team"
    )
    assert invited.status_code == 303
    page = browser.get("/")
    assert set(STEPS) == {key for key, (done, _) in _steps(page.text).items() if done}
    assert "You are all set up" in page.text
    assert "Get started" not in page.text


async def test_other_ways_to_tick_a_step(browser: Browser, database: Database) -> None:
    """A WhatsApp number is live too; a conversation the assistant answered proves it was
    tried; a second member is a team."""
    organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    async with database.transaction() as session:
        await make_whatsapp_number(session, organisation.id)
        await make_conversation(session, organisation.id, ai_disclosed_at=datetime.now(UTC))
    await add_member(database, organisation.id, Role.VIEWER)
    assert _done(browser) == {"try", "live", "team"}


async def test_an_inactive_assistant_listing_a_site_is_not_live(
    browser: Browser, database: Database
) -> None:
    organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    async with database.transaction() as session:
        TenantScope(session, organisation.id).add(
            Assistant(name="Off", active=False, allowed_origins=["https://shop.example"])
        )
    assert "live" not in _done(browser)


async def test_another_organisations_progress_does_not_count(
    browser: Browser, database: Database
) -> None:
    other, _ = await make_organisation(database, name="Other")
    assistant_id = await _add_assistant(database, other.id)
    await _add_item(database, other.id, ItemStatus.READY)
    async with database.transaction() as session:
        await make_whatsapp_number(session, other.id, assistant_id)
        await make_conversation(session, other.id, ai_disclosed_at=datetime.now(UTC))
    await add_member(database, other.id, Role.AGENT)

    _, owner = await make_organisation(database, name="Mine")
    browser.sign_in(owner.email, PASSWORD)
    assert _done(browser) == set()


NOW = datetime(2026, 3, 14, 15, 30, tzinfo=UTC)
MIDNIGHT = datetime(2026, 3, 14, tzinfo=UTC)


async def _seed_numbers(database: Database, organisation_id: uuid.UUID) -> None:
    """Hand-built: three open conversations (one waiting for a person, one with a person),
    one closed; replies today and yesterday, of every sender and status."""
    yesterday = MIDNIGHT - timedelta(minutes=1)
    today = MIDNIGHT + timedelta(hours=9)
    async with database.transaction() as session:
        waiting = await make_conversation(
            session,
            organisation_id,
            state=ConversationState.WAITING_FOR_HUMAN,
            last_message_at=today,
        )
        with_person = await make_conversation(
            session, organisation_id, state=ConversationState.HUMAN, last_message_at=today
        )
        quiet = await make_conversation(
            session,
            organisation_id,
            channel=Channel.WEBCHAT,
            state=ConversationState.BOT,
            last_message_at=yesterday,
        )
        closed_today = await make_conversation(
            session, organisation_id, state=ConversationState.CLOSED, last_message_at=today
        )

        def reply(
            conversation: Conversation, sender: Sender, at: datetime, **fields: Any
        ) -> Awaitable[Message]:
            return make_message(
                session,
                conversation,
                direction=fields.pop("direction", Direction.OUTBOUND),
                sender=sender,
                created_at=at,
                **fields,
            )

        # Counted: the assistant's and a person's sent, delivered or read replies today.
        await reply(waiting, Sender.ASSISTANT, today)
        await reply(with_person, Sender.AGENT, today, status=MessageStatus.DELIVERED)
        await reply(with_person, Sender.AGENT, today, status=MessageStatus.READ)
        await reply(closed_today, Sender.ASSISTANT, today)
        # Not counted: yesterday's, a customer's, a note, a notice, unsent and failed ones.
        await reply(quiet, Sender.ASSISTANT, yesterday)
        await reply(waiting, Sender.ASSISTANT, yesterday)
        await reply(
            waiting,
            Sender.CUSTOMER,
            today,
            direction=Direction.INBOUND,
            status=MessageStatus.RECEIVED,
        )
        await reply(with_person, Sender.AGENT, today, direction=Direction.INTERNAL)
        await reply(waiting, Sender.SYSTEM, today)
        await reply(with_person, Sender.AGENT, today, status=MessageStatus.QUEUED)
        await reply(with_person, Sender.AGENT, today, status=MessageStatus.FAILED)


async def test_todays_numbers_on_hand_built_data(database: Database) -> None:
    organisation, _ = await make_organisation(database)
    other, _ = await make_organisation(database, name="Other")
    await _seed_numbers(database, organisation.id)
    await _seed_numbers(database, other.id)  # never counted for the first one
    async with database.transaction() as session:
        numbers = await today_numbers(TenantScope(session, organisation.id), now=NOW)
    assert numbers.open_conversations == 3
    assert numbers.waiting_for_person == 1
    assert numbers.replies_sent_today == 4
    assert numbers.day_started_at == MIDNIGHT
    async with database.transaction() as session:
        tomorrow = await today_numbers(
            TenantScope(session, organisation.id), now=NOW + timedelta(days=1)
        )
    assert tomorrow.replies_sent_today == 0


@pytest.mark.parametrize(
    ("now", "midnight"),
    [
        (datetime(2026, 3, 14, 0, 0, tzinfo=UTC), datetime(2026, 3, 14, tzinfo=UTC)),
        (datetime(2026, 3, 14, 23, 59, 59, tzinfo=UTC), datetime(2026, 3, 14, tzinfo=UTC)),
        # 01:00 in Paris on the 15th is still the 14th in UTC.
        (
            datetime(2026, 3, 15, 1, 0, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 3, 14, tzinfo=UTC),
        ),
    ],
)
def test_the_day_starts_at_midnight_utc(now: datetime, midnight: datetime) -> None:
    assert start_of_day(now) == midnight


async def test_the_page_and_the_api_show_the_numbers(
    browser: Browser, live_server: LiveServer, database: Database
) -> None:
    organisation, owner = await make_organisation(database)
    now = datetime.now(UTC)
    async with database.transaction() as session:
        waiting = await make_conversation(
            session,
            organisation.id,
            state=ConversationState.WAITING_FOR_HUMAN,
            last_message_at=now,
        )
        await make_conversation(session, organisation.id, last_message_at=now)
        await make_message(session, waiting, direction=Direction.OUTBOUND, created_at=now)
    browser.sign_in(owner.email, PASSWORD)
    page = browser.get("/").text
    assert re.search(r"<strong>2</strong> open conversations", page)
    assert re.search(r"<strong>1</strong> waiting for a person", page)
    assert re.search(r"<strong>1</strong> reply sent today", page)
    assert 'href="/inbox?state=waiting_for_human"' in page

    key = await make_api_key(database, organisation.id, Role.VIEWER)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        overview = api.get("/api/v1/overview")
    assert overview.status_code == 200
    body = overview.json()
    assert body["today"]["open_conversations"] == 2
    assert body["today"]["waiting_for_person"] == 1
    assert body["today"]["replies_sent_today"] == 1
    assert [step["key"] for step in body["steps"]] == STEPS
    assert body["complete"] is False
