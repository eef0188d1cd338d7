"""Customers in the dashboard, over real HTTP: finding them, their page, the export and
the erasure behind a typed confirmation, and what an erased customer's conversations
look like in the inbox afterwards."""

from __future__ import annotations

import html
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import select

from cybergine.accounts.models import Role
from cybergine.conversations.models import (
    Channel,
    Conversation,
    ConversationState,
    Customer,
    Message,
)
from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from cybergine.privacy.bundle import verify_bundle
from tests.support.browser import Browser
from tests.support.conversations import make_conversation, make_customer, make_message
from tests.support.factories import PASSWORD, make_api_key, make_organisation
from tests.support.inbox import act, has_testid, member, rows, signed_in
from tests.support.server import LiveServer

ADA_PHONE = "+4915123456789"
VISITOR = "3f9a1c2e7b5d4a6f8e0c1b2a3d4e5f60"
_ROW = re.compile(r'data-testid="customer-row" data-customer-id="([0-9a-f-]+)"')


@dataclass
class World:
    organisation_id: uuid.UUID
    owner_email: str
    ada: uuid.UUID
    grace: uuid.UUID
    conversation: uuid.UUID


async def _world(database: Database) -> World:
    """A shop with Ada on WhatsApp (in a conversation, opted in when she wrote) and Grace,
    a web visitor; another shop has its own Ada with the same number."""
    organisation, owner = await make_organisation(database, name="Corner Shop")
    other, _ = await make_organisation(database, name="Other Shop")
    wrote = datetime.now(UTC) - timedelta(hours=1)
    async with database.transaction() as session:
        ada = await make_customer(
            session,
            organisation.id,
            external_id=ADA_PHONE[1:],
            display_name="Ada Lovelace",
            opted_in_at=wrote,
            opt_in_source="customer_message",
        )
        grace = await make_customer(
            session,
            organisation.id,
            channel=Channel.WEBCHAT,
            external_id=VISITOR,
            display_name=None,
        )
        conversation = await make_conversation(
            session,
            organisation.id,
            customer=ada,
            last_inbound_at=wrote,
            last_message_at=wrote,
        )
        await make_message(session, conversation, text="Where is my parcel?", sent_at=wrote)
        await make_customer(
            session, other.id, external_id=ADA_PHONE[1:], display_name="Ada Elsewhere"
        )
    return World(organisation.id, owner.email, ada.id, grace.id, conversation.id)


def _found(page: str) -> list[str]:
    return _ROW.findall(page)


async def test_customers_are_found_by_name_phone_and_visitor_id_in_their_own_shop_only(
    browser: Browser, database: Database
) -> None:
    world = await _world(database)
    assert browser.sign_in(world.owner_email, PASSWORD).status_code == 303

    everyone = browser.get("/customers")
    assert everyone.status_code == 200
    assert _found(everyone.text) == [str(world.grace), str(world.ada)]  # newest first
    assert "Ada Elsewhere" not in everyone.text
    for query, expected in (
        ("ada", [world.ada]),
        ("LOVELACE", [world.ada]),
        ("+49 151 2345 6789", [world.ada]),
        ("4915123456789", [world.ada]),  # the digits alone: the WhatsApp id
        ("3f9a1c2e", [world.grace]),  # as the inbox shortens a visitor's id
        ("Elsewhere", []),
        ("100%_", []),
    ):
        found = browser.get(f"/customers?{urlencode({'q': query})}")
        assert found.status_code == 200, query
        assert _found(found.text) == [str(c) for c in expected], query
    assert "Nobody matches" in browser.get("/customers?q=Elsewhere").text

    # The API finds them the same way (and the export names the customer too).
    key = await make_api_key(database, world.organisation_id, Role.ADMIN)
    api = browser.http.get(
        "/api/v1/customers",
        params={"q": "+49 151 2345 6789"},
        headers={"authorization": f"Bearer {key}", "accept": "application/json"},
    )
    assert [c["id"] for c in api.json()] == [str(world.ada)]
    assert api.json()[0]["opt_in_source"] == "customer_message"


async def test_the_list_pages_by_keyset_without_repeating_anyone(
    browser: Browser, database: Database
) -> None:
    organisation, owner = await make_organisation(database)
    async with database.transaction() as session:
        made = [
            (await make_customer(session, organisation.id, display_name=f"Person {n}")).id
            for n in range(57)
        ]
    browser.sign_in(owner.email, PASSWORD)
    first = browser.get("/customers")
    shown = _found(first.text)
    assert len(shown) == 50
    more = re.search(r'href="([^"]+)" data-testid="customers-more"', first.text)
    assert more is not None
    second = browser.get(html.unescape(more.group(1)))
    assert second.status_code == 200
    rest = _found(second.text)
    assert 'data-testid="customers-more"' not in second.text
    assert shown + rest == [str(i) for i in reversed(made)]
    assert browser.get("/customers?cursor=not-a-cursor").status_code == 422


async def test_a_customers_page_shows_their_consent_and_conversations(
    browser: Browser, database: Database
) -> None:
    world = await _world(database)
    async with database.transaction() as session:
        ada = await session.get(Customer, world.ada)
        assert ada is not None
        ada.opted_out_at = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
        ada.opt_out_source = "keyword"
    browser.sign_in(world.owner_email, PASSWORD)
    page = browser.get(f"/customers/{world.ada}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Ada Lovelace" in text
    assert ADA_PHONE in text
    assert 'data-testid="consent-state">Opted out' in text
    assert (
        "04 Mar 2026 10:30 UTC on WhatsApp, by sending one of your opt-in or opt-out words" in text
    )
    assert "They had opted in on" in text
    assert f'href="/inbox/{world.conversation}"' in text
    # Owners see the data controls.
    assert has_testid(page.text, "customer-export")
    assert has_testid(page.text, "erase-customer")
    assert "Type <strong" in page.text
    assert "Ada Lovelace</strong> to confirm" in page.text
    # The conversation links back to the customer.
    assert f'href="/customers/{world.ada}"' in browser.get(f"/inbox/{world.conversation}").text


async def test_the_export_downloads_their_json_under_a_safe_name_and_is_audited(
    browser: Browser, database: Database
) -> None:
    world = await _world(database)
    browser.sign_in(world.owner_email, PASSWORD)
    download = browser.post(f"/customers/{world.ada}/export", csrf_from=f"/customers/{world.ada}")
    assert download.status_code == 200, download.text
    assert download.headers["content-type"].startswith("application/json")
    assert download.headers["content-disposition"] == (
        f'attachment; filename="customer-{world.ada}.json"'
    )
    assert download.headers["cache-control"] == "no-store"
    exported = json.loads(download.content)
    assert exported["customer"]["display_name"] == "Ada Lovelace"
    [conversation] = exported["conversations"]
    assert [m["text"] for m in conversation["messages"]] == ["Where is my parcel?"]
    # Without the form's token, nothing is handed out.
    assert browser.post(f"/customers/{world.ada}/export").status_code == 403

    # The bundle: the same data, signed, as a ZIP (the form beside the JSON's).
    assert has_testid(browser.get(f"/customers/{world.ada}").text, "customer-export-bundle")
    bundle = browser.post(
        f"/customers/{world.ada}/export/bundle", csrf_from=f"/customers/{world.ada}"
    )
    assert bundle.status_code == 200, bundle.text
    assert bundle.headers["content-type"] == "application/zip"
    assert verify_bundle(bundle.content) == []
    assert browser.post(f"/customers/{world.ada}/export/bundle").status_code == 403

    # The API's export is audited by the same function.
    key = await make_api_key(database, world.organisation_id, Role.ADMIN)
    api = browser.http.get(
        f"/api/v1/customers/{world.ada}/export", headers={"authorization": f"Bearer {key}"}
    )
    assert api.status_code == 200
    async with database.transaction() as session:
        audited = list(
            (
                await session.execute(
                    select(AuditEvent.actor_type, AuditEvent.details).where(
                        AuditEvent.action == "customer.exported",
                        AuditEvent.target_id == str(world.ada),
                    )
                )
            ).all()
        )
    assert len(audited) == 3  # the JSON, the bundle, the API's JSON
    assert all(
        details == {"conversations": 1, "messages": 1, "attachments": 0, "webhook_events": 0}
        for _, details in audited
    )


async def test_erasure_needs_the_typed_name_then_closes_and_labels_their_conversations(
    live_server: LiveServer, database: Database
) -> None:
    world = await _world(database)
    owner = await member(database, world.organisation_id, Role.OWNER)
    page_url = f"/customers/{world.ada}"
    with signed_in(live_server.url, owner) as browser:
        wrong = browser.post(f"{page_url}/erase", {"confirmation": "Ada"}, csrf_from=page_url)
        assert wrong.status_code == 422
        assert 'aria-invalid="true" aria-describedby="erase-confirmation-error"' in wrong.text
        assert 'id="erase-confirmation-error"' in wrong.text
        assert 'value="Ada"' in wrong.text  # what they typed is kept
        async with database.transaction() as session:
            ada = await session.get(Customer, world.ada)
            assert ada is not None
            assert ada.display_name == "Ada Lovelace"

        # Any case and spacing will do.
        erased = browser.post(
            f"{page_url}/erase", {"confirmation": "  ada   LOVELACE "}, csrf_from=page_url
        )
        assert erased.status_code == 303, erased.text
        page = browser.get(erased.headers["location"])
        assert "Their data is erased" in page.text
        assert has_testid(page.text, "customer-erased")
        assert not has_testid(page.text, "erase-customer")
        assert "Ada Lovelace" not in page.text

        async with database.transaction() as session:
            conversation = await session.get(Conversation, world.conversation)
            assert conversation is not None
            assert conversation.state is ConversationState.CLOSED
            texts = (
                await session.execute(
                    select(Message.text).where(Message.conversation_id == world.conversation)
                )
            ).scalars()
            assert list(texts) == [None]
            erasures = list(
                (
                    await session.execute(
                        select(AuditEvent.actor_id, AuditEvent.details).where(
                            AuditEvent.action == "customer.erased",
                            AuditEvent.target_id == str(world.ada),
                        )
                    )
                ).all()
            )
        assert [(actor, details["conversations_closed"]) for actor, details in erasures] == [
            (str(owner.id), 1)
        ]

        # The inbox lists the conversation as an erased customer's, closed.
        listed = browser.get("/inbox?state=closed")
        assert [r.id for r in rows(listed.text)] == [str(world.conversation)]
        assert "Erased customer" in listed.text
        conversation_page = browser.get(f"/inbox/{world.conversation}")
        assert "<h1>Erased customer</h1>" in conversation_page.text
        assert has_testid(conversation_page.text, "erased-customer")
        for control in ("reply-text", "reply-send", "take-over", "note-text", "assign-to"):
            assert not has_testid(conversation_page.text, control), control

        # Posting anyway is refused, and says why.
        for action, data in (("reply", {"text": "Hello?"}), ("take-over", {})):
            refused = act(browser, str(world.conversation), action, data)
            assert refused.status_code == 409, action
            assert "data was erased" in html.unescape(refused.text), action


async def test_agents_neither_see_nor_use_the_data_controls(
    live_server: LiveServer, database: Database
) -> None:
    world = await _world(database)
    agent = await member(database, world.organisation_id, Role.AGENT)
    with signed_in(live_server.url, agent) as browser:
        page = browser.get(f"/customers/{world.ada}")
        assert page.status_code == 200
        assert "Ada Lovelace" in page.text
        assert not has_testid(page.text, "customer-export")
        assert not has_testid(page.text, "erase-confirmation")
        token = browser.csrf()
        assert browser.post(f"/customers/{world.ada}/export", csrf=token).status_code == 403
        refused = browser.post(
            f"/customers/{world.ada}/erase", {"confirmation": "Ada Lovelace"}, csrf=token
        )
        assert refused.status_code == 403
    async with database.transaction() as session:
        ada = await session.get(Customer, world.ada)
        assert ada is not None
        assert not ada.erased


async def test_another_shops_customer_is_not_found(browser: Browser, database: Database) -> None:
    world = await _world(database)
    _, stranger = await make_organisation(database, name="Stranger Shop")
    browser.sign_in(stranger.email, PASSWORD)
    assert browser.get(f"/customers/{world.ada}").status_code == 404
    assert _found(browser.get("/customers?q=ada").text) == []
