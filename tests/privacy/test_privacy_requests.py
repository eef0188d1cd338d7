"""Data-subject requests, tracked (policy §14): a customer starts one in the chat, the
team verifies who asked and carries it out (export, erasure, correction, restriction,
objection) or refuses it, through /api/v1/privacy/requests; overdue ones are flagged and
their owners e-mailed once a day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from cybergine.accounts.models import Membership, Role, User
from cybergine.conversations.models import Conversation, ConversationState, Customer
from cybergine.db.engine import Database
from cybergine.jobs import APP
from cybergine.mail.models import OutboundEmail
from cybergine.privacy import requests
from cybergine.privacy.audit import AuditEvent
from cybergine.settings import Settings
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, make_organisation_with_key
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer
from tests.support.whatsapp import Shop

ADA = "15550001111"
GRACE = "15550002222"


def _customer_id(shop: Shop, wa_id: str) -> str:
    response = shop.api.get("/api/v1/customers", params={"phone_number": f"+{wa_id}"})
    assert response.status_code == 200, response.text
    [customer] = response.json()
    customer_id: str = customer["id"]
    return customer_id


def _requests(shop: Shop, **params: Any) -> list[dict[str, Any]]:
    response = shop.api.get("/api/v1/privacy/requests", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _open(shop: Shop, kind: str, customer_id: str, **extra: Any) -> dict[str, Any]:
    response = shop.api.post(
        "/api/v1/privacy/requests", json={"kind": kind, "customer_id": customer_id, **extra}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _verified(shop: Shop, request_id: str) -> dict[str, Any]:
    response = shop.api.patch(
        f"/api/v1/privacy/requests/{request_id}",
        json={"verification": "verified", "verification_method": "same_channel"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _carry_out(shop: Shop, request_id: str, **body: Any) -> dict[str, Any]:
    response = shop.api.post(f"/api/v1/privacy/requests/{request_id}/carry-out", json=body)
    assert response.status_code == 200, response.text
    done: dict[str, Any] = response.json()
    return done


async def _owner_browser(shop: Shop, live_server: LiveServer) -> Browser:
    async with shop.database.transaction() as session:
        email = await session.scalar(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.organisation_id == shop.organisation_id, Membership.role == Role.OWNER
            )
        )
    assert email is not None
    browser = Browser(live_server.url)
    assert browser.sign_in(email, PASSWORD).status_code == 303
    return browser


async def _known_customer(shop: Shop, wa_id: str = ADA) -> str:
    shop.says("What is your return policy?", wa_id=wa_id)
    await shop.work()
    return _customer_id(shop, wa_id)


async def test_a_customer_asks_in_the_chat_and_the_request_appears_for_the_team(
    shop: Shop,
) -> None:
    shop.says("Hi, please delete my data", wa_id=ADA)
    await shop.work()
    [confirmation] = shop.sent_to(ADA)
    assert "delete your data" in confirmation
    assert "30 days" in confirmation
    [request] = _requests(shop)
    assert request["kind"] == "erasure"
    assert request["channel"] == "whatsapp"
    assert (request["status"], request["verification"]) == ("open", "unverified")
    assert request["customer_id"] == _customer_id(shop, ADA)
    received = datetime.fromisoformat(request["received_at"])
    assert datetime.fromisoformat(request["due_at"]) - received == timedelta(days=30)
    assert request["overdue"] is False
    # Asked again in other words, it is another request; the same message is one.
    shop.says("What do you know about me?", wa_id=ADA)
    await shop.work()
    assert sorted(r["kind"] for r in _requests(shop)) == ["access", "erasure"]
    # In the customer's language, when the assistant speaks it.
    patched = shop.api.patch(
        f"/api/v1/assistants/{shop.assistant_id}", json={"languages": ["en", "de"]}
    )
    assert patched.status_code == 200, patched.text
    shop.says("Bitte löschen Sie meine Daten", wa_id=GRACE)
    await shop.work()
    [antwort] = shop.sent_to(GRACE)
    assert "Löschung Ihrer Daten" in antwort
    assert "30 Tagen" in antwort
    detail = shop.api.get(f"/api/v1/privacy/requests/{request['id']}").json()
    assert [step["action"] for step in detail["trail"]] == ["privacy.request.opened"]


async def test_a_request_for_a_human_review_is_tracked_too(shop: Shop) -> None:
    shop.says("I want a human to review this decision", wa_id=ADA)
    await shop.work()
    [request] = _requests(shop)
    assert request["kind"] == "human_review"
    [conversation] = shop.conversations()
    assert conversation["state"] == "waiting_for_human"


async def test_the_list_puts_overdue_requests_first_and_pages_with_a_cursor(shop: Shop) -> None:
    ada = await _known_customer(shop)
    recent = _open(shop, "access", ada)
    old = _open(
        shop,
        "erasure",
        ada,
        channel="email",
        received_at=(datetime.now(UTC) - timedelta(days=31)).isoformat(),
    )
    closed = _open(shop, "portability", ada)
    refused = shop.api.patch(
        f"/api/v1/privacy/requests/{closed['id']}", json={"refusal_reason": "duplicate"}
    )
    assert refused.status_code == 200, refused.text
    assert refused.json()["status"] == "refused"
    assert old["overdue"] is True
    first = shop.api.get("/api/v1/privacy/requests", params={"limit": 2}).json()
    assert [r["id"] for r in first["items"]] == [old["id"], recent["id"]]
    assert first["next_cursor"]
    rest = shop.api.get(
        "/api/v1/privacy/requests", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [r["id"] for r in rest["items"]] == [closed["id"]]
    assert rest["next_cursor"] is None
    assert [r["id"] for r in _requests(shop, overdue="true")] == [old["id"]]
    assert [r["id"] for r in _requests(shop, status="refused")] == [closed["id"]]
    broken = shop.api.get("/api/v1/privacy/requests", params={"cursor": "nonsense"})
    assert broken.status_code == 422
    assert broken.headers["content-type"].startswith("application/problem+json")


async def test_bad_requests_are_refused_with_problems(shop: Shop, live_server: LiveServer) -> None:
    ada = await _known_customer(shop)
    neither = shop.api.post("/api/v1/privacy/requests", json={"kind": "access"})
    assert neither.status_code == 422
    assert neither.headers["content-type"].startswith("application/problem+json")
    future = shop.api.post(
        "/api/v1/privacy/requests",
        json={
            "kind": "access",
            "customer_id": ada,
            "received_at": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
        },
    )
    assert future.status_code == 422
    ancient = shop.api.post(
        "/api/v1/privacy/requests",
        json={"kind": "access", "customer_id": ada, "received_at": "0001-01-01T00:00:00+14:00"},
    )
    assert ancient.status_code == 422
    request = _open(shop, "erasure", ada)
    path = f"/api/v1/privacy/requests/{request['id']}"
    # Not done before the person is verified; not refused without a reason.
    early = shop.api.patch(path, json={"status": "done"})
    assert early.status_code == 409
    assert early.headers["content-type"].startswith("application/problem+json")
    assert shop.api.post(f"{path}/carry-out", json={}).status_code == 409
    assert shop.api.patch(path, json={"status": "refused"}).status_code == 422
    assert shop.api.patch(path, json={"status": "open"}).status_code == 422
    half = shop.api.patch(path, json={"verification": "verified"})
    assert half.status_code == 422
    assert half.json()["field"] == "verification_method"
    # Another organisation's customer is no one here.
    _, other_key = await make_organisation_with_key(shop.database, name="Other")
    with live_server.client(headers={"authorization": f"Bearer {other_key}"}) as other:
        assert other.get(path).status_code == 404
        stranger = other.post(
            "/api/v1/privacy/requests", json={"kind": "access", "customer_id": ada}
        )
        assert stranger.status_code == 404
        assert other.get("/api/v1/privacy/requests").json()["items"] == []
    # Still erasable: nothing happened to Ada.
    async with shop.database.transaction() as session:
        customer = await session.get(Customer, ada)
    assert customer is not None
    assert customer.phone_number == f"+{ADA}"


async def test_access_gives_the_export_and_closes_the_request_with_its_trail(shop: Shop) -> None:
    ada = await _known_customer(shop)
    request = _open(shop, "access", ada)
    verified = _verified(shop, request["id"])
    assert verified["verification"] == "verified"
    assert verified["verification_method"] == "same_channel"
    done = _carry_out(shop, request["id"])
    assert done["request"]["status"] == "done"
    assert done["export"]["customer"]["phone_number"] == f"+{ADA}"
    detail = shop.api.get(f"/api/v1/privacy/requests/{request['id']}").json()
    assert [s["action"] for s in detail["trail"]] == [
        "privacy.request.opened",
        "privacy.request.verified",
        "privacy.request.status_changed",
    ]
    assert detail["trail"][-1]["details"]["status"] == "done"
    # Closed is closed.
    again = shop.api.post(f"/api/v1/privacy/requests/{request['id']}/carry-out", json={})
    assert again.status_code == 409


async def test_erasure_erases_the_customer_through_the_erasure_service(shop: Shop) -> None:
    ada = await _known_customer(shop)
    await _known_customer(shop, GRACE)
    request = _open(shop, "erasure", ada)
    _verified(shop, request["id"])
    done = _carry_out(shop, request["id"])
    assert done["details"]["conversations"] == 1
    assert done["request"]["customer_id"] == ada
    async with shop.database.transaction() as session:
        customer = await session.get(Customer, ada)
        erased = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "customer.erased")
        )
    assert customer is not None
    assert customer.erased
    assert customer.phone_number is None
    assert erased == 1


async def test_rectification_corrects_name_and_phone_and_is_audited(shop: Shop) -> None:
    ada = await _known_customer(shop)
    request = _open(shop, "rectification", ada)
    _verified(shop, request["id"])
    wrong = shop.api.post(
        f"/api/v1/privacy/requests/{request['id']}/carry-out", json={"phone_number": "call me"}
    )
    assert wrong.status_code == 422
    assert wrong.json()["field"] == "phone_number"
    done = _carry_out(
        shop, request["id"], display_name="  Ada   Lovelace ", phone_number="+44 20 7946 0018"
    )
    assert done["details"]["fields"] == ["display_name", "phone_number"]
    async with shop.database.transaction() as session:
        customer = await session.get(Customer, ada)
        entry = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.action == "customer.rectified")
            )
        ).scalar_one()
    assert customer is not None
    assert (customer.display_name, customer.phone_number) == ("Ada Lovelace", "+442079460018")
    # The entry names the fields, never the values, and the request it answered.
    assert entry.details == {
        "request_id": request["id"],
        "fields": ["display_name", "phone_number"],
    }
    assert "Lovelace" not in str(entry.details)


async def test_restriction_stores_messages_but_nothing_answers_them_until_lifted(
    shop: Shop, live_server: LiveServer
) -> None:
    ada = await _known_customer(shop)
    answered = len(shop.sent_to(ADA))
    request = _open(shop, "restriction", ada)
    _verified(shop, request["id"])
    _carry_out(shop, request["id"])

    shop.says("How long does shipping take?", wa_id=ADA)
    await shop.work()
    assert len(shop.sent_to(ADA)) == answered  # no answer
    [conversation] = shop.conversations()
    texts = [m["text"] for m in shop.messages(conversation["id"])]
    assert "How long does shipping take?" in texts  # stored
    assert texts[-1] == "How long does shipping take?"  # nothing after it

    # The inbox flags them, in the list and on the conversation.
    owner = await _owner_browser(shop, live_server)
    try:
        assert 'data-testid="restricted-flag"' in owner.get("/inbox/list").text
        assert 'data-testid="restricted-notice"' in owner.get(f"/inbox/{conversation['id']}").text
    finally:
        owner.close()

    lifted = shop.api.delete(f"/api/v1/privacy/restrictions/{ada}")
    assert lifted.status_code == 204, lifted.text
    assert shop.api.delete(f"/api/v1/privacy/restrictions/{ada}").status_code == 409
    shop.says("Do you ship abroad?", wa_id=ADA)
    await shop.work()
    assert len(shop.sent_to(ADA)) == answered + 1


async def test_objection_hands_the_customer_to_people_only(shop: Shop) -> None:
    ada = await _known_customer(shop)
    answered = len(shop.sent_to(ADA))
    request = _open(shop, "objection", ada)
    _verified(shop, request["id"])
    done = _carry_out(shop, request["id"])
    assert done["details"]["conversations_handed_off"] == 1
    [conversation] = shop.conversations()
    assert conversation["state"] == "waiting_for_human"
    shop.says("Hello again, what about shipping?", wa_id=ADA)
    await shop.work()
    assert len(shop.sent_to(ADA)) == answered
    # A conversation they start later (the team closed this one) goes to people as well.
    async with shop.database.transaction() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation["id"])
            .values(state=ConversationState.CLOSED, closed_at=func.now())
        )
    shop.says("Are you there?", wa_id=ADA)
    await shop.work()
    assert len(shop.sent_to(ADA)) == answered
    [newer] = shop.conversations(state="waiting_for_human")
    assert newer["id"] != conversation["id"]


async def test_overdue_requests_are_emailed_to_owners_once_a_day(shop: Shop) -> None:
    ada = await _known_customer(shop)
    late = _open(
        shop,
        "access",
        ada,
        channel="email",
        received_at=(datetime.now(UTC) - timedelta(days=40)).isoformat(),
    )
    _open(shop, "erasure", ada)  # not due yet
    today = datetime.now(UTC).date()

    async def notify(day: date) -> list[requests.OverdueNotice]:
        async with shop.database.transaction() as session:
            return await requests.notify_overdue(session, public_url="https://app.test", today=day)

    [notice] = [n for n in await notify(today) if n.organisation_id == shop.organisation_id]
    assert [str(i) for i in notice.request_ids] == [late["id"]]
    assert len(notice.recipients) == 1  # the owner
    assert [n for n in await notify(today) if n.organisation_id == shop.organisation_id] == []
    async with shop.database.transaction() as session:
        emails = list(
            (
                await session.execute(
                    select(OutboundEmail).where(OutboundEmail.to_address == notice.recipients[0])
                )
            ).scalars()
        )
    [email] = [e for e in emails if "privacy" in e.subject.lower()]
    assert "https://app.test/privacy/requests?overdue=1" in (email.body_text or "")
    # The next day, still overdue: told again.
    tomorrow = [
        n
        for n in await notify(today + timedelta(days=1))
        if n.organisation_id == shop.organisation_id
    ]
    assert len(tomorrow) == 1
    # Once answered, never again.
    _verified(shop, late["id"])
    _carry_out(shop, late["id"])
    later = await notify(today + timedelta(days=2))
    assert [n for n in later if n.organisation_id == shop.organisation_id] == []


def test_the_overdue_reminder_is_a_periodic_job_of_the_app() -> None:
    periodic = {name for name, _ in APP.periodic_registry.periodic_tasks}
    assert "privacy:notify_overdue_requests" in periodic


async def test_the_test_chat_says_what_a_request_would_do_and_records_none(shop: Shop) -> None:
    response = shop.api.post(
        f"/api/v1/assistants/{shop.assistant_id}/preview", json={"text": "Please forget me"}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "delete your data" in answer["text"]
    assert "30 days" in answer["text"]
    assert "Privacy requests" in answer["reason"]
    assert _requests(shop) == []


async def test_a_web_visitor_asks_in_the_widget_and_the_request_says_so(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    _, key = await make_organisation_with_key(database)
    shop = "https://shop.example"
    with (
        live_server.client(headers={"authorization": f"Bearer {key}"}) as api,
        live_server.client() as widget,
    ):
        created = api.post("/api/v1/assistants", json={"name": "Mia", "allowed_origins": [shop]})
        assert created.status_code == 201, created.text
        started = widget.post(
            "/widget/v1/session",
            json={"widget_key": created.json()["widget_key"], "visitor_token": None},
            headers={"Origin": shop},
        )
        assert started.status_code == 200, started.text
        said = widget.post(
            "/widget/v1/messages",
            json={"text": "What personal data do you hold about me?", "client_id": "client-0001"},
            headers={
                "Origin": shop,
                "Authorization": f"Bearer {started.json()['visitor_token']}",
            },
        )
        assert said.status_code in (200, 201, 202), said.text
        await run_jobs(database, settings)
        [request] = api.get("/api/v1/privacy/requests").json()["items"]
        assert (request["kind"], request["channel"]) == ("access", "webchat")
        [conversation] = api.get("/api/v1/conversations").json()["items"]
        messages = api.get(f"/api/v1/conversations/{conversation['id']}/messages").json()
        assert "30 days" in messages["items"][-1]["text"]


async def test_an_objecting_customer_who_asks_in_a_new_conversation_has_it_recorded(
    shop: Shop,
) -> None:
    """People answer a customer who objected to the assistant, in every conversation they
    start; a right they exercise there is still recorded for the team (policy §14)."""
    ada = await _known_customer(shop)
    answered = len(shop.sent_to(ADA))
    objection = _open(shop, "objection", ada)
    _verified(shop, objection["id"])
    _carry_out(shop, objection["id"])
    [conversation] = shop.conversations()
    async with shop.database.transaction() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation["id"])
            .values(state=ConversationState.CLOSED, closed_at=func.now())
        )
    shop.says("Please delete my data", wa_id=ADA)
    await shop.work()
    assert len(shop.sent_to(ADA)) == answered  # the assistant stays silent
    [newer] = shop.conversations(state="waiting_for_human")
    assert newer["id"] != conversation["id"]
    [request] = _requests(shop, status="open")
    assert (request["kind"], request["channel"]) == ("erasure", "whatsapp")
    assert request["customer_id"] == ada
