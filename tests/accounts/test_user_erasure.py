"""Deleting one's account in the dashboard, and users left without any organisation
erased 30 days after their last one (policy §11)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cybergine.accounts.models import Membership, Role, User
from cybergine.accounts.service import organisations
from cybergine.accounts.service.user_erasure import DEPARTED_GRACE, erase_departed
from cybergine.db.engine import Database
from cybergine.privacy import audit
from cybergine.privacy.audit import AuditEvent
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, add_member, make_organisation


async def test_the_account_page_deletes_the_account_once_confirmed(
    browser: Browser, database: Database
) -> None:
    organisation, owner = await make_organisation(database, name="Corner Shop")
    person, _ = await add_member(database, organisation.id, Role.AGENT)
    browser.sign_in(owner.email, PASSWORD)
    page = browser.get("/account")
    assert page.status_code == 200
    assert "You are the only owner of <strong>Corner Shop</strong>" in page.text
    refused = browser.post(
        "/account/delete",
        {"password": PASSWORD, "confirmation": "delete my account"},
        csrf_from="/account",
    )
    assert refused.status_code == 409
    assert "Make someone else owner there" in refused.text
    browser.post("/logout", csrf_from="/account")

    browser.sign_in(person.email, PASSWORD)
    unconfirmed = browser.post(
        "/account/delete", {"password": PASSWORD, "confirmation": "yes"}, csrf_from="/account"
    )
    assert unconfirmed.status_code == 422
    assert "nothing was deleted" in unconfirmed.text
    wrong = browser.post(
        "/account/delete",
        {"password": "not it at all", "confirmation": "delete my account"},
        csrf_from="/account",
    )
    assert wrong.status_code == 422
    assert "password is not right" in wrong.text
    deleted = browser.post(
        "/account/delete",
        {"password": PASSWORD, "confirmation": "Delete my account"},
        csrf_from="/account",
    )
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/login?notice=account-deleted"
    assert browser.get("/account").status_code in {303, 401}
    assert "Your account is deleted" in browser.get("/login?notice=account-deleted").text
    async with database.transaction() as session:
        assert await session.get(User, person.id) is None
        assert await session.get(User, owner.id) is not None


async def test_the_account_page_corrects_the_name_and_asks_for_an_address_change(
    browser: Browser, database: Database
) -> None:
    _organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    saved = browser.post("/account/profile", {"name": "Olive Oyl"}, csrf_from="/account")
    assert saved.status_code == 303
    assert "Olive Oyl" in browser.get("/account").text
    blank = browser.post("/account/profile", {"name": " "}, csrf_from="/account")
    assert blank.status_code == 422
    asked = browser.post("/account/email", {"email": "olive.new@example.com"}, csrf_from="/account")
    assert asked.status_code == 303
    assert "olive.new@example.com" in browser.get("/account").text


async def _run_sweep(database: Database, now: datetime) -> int:
    async with database.transaction() as session:
        return await erase_departed(session, now=now)


async def _user(database: Database, user_id: object) -> User | None:
    async with database.transaction() as session:
        return await session.get(User, user_id)


async def test_users_without_an_organisation_are_erased_30_days_later(
    database: Database,
) -> None:
    organisation, owner = await make_organisation(database, name="Closing Shop")
    staying, _ = await add_member(database, organisation.id, Role.AGENT)
    other, _ = await make_organisation(database, name="Still Open")
    async with database.transaction() as session:
        session.add(Membership(organisation_id=other.id, user_id=staying.id, role=Role.VIEWER))
    async with database.transaction() as session:
        await organisations.schedule_deletion(session, organisation.id, grace=timedelta(0))
    async with database.transaction() as session:
        assert await organisations.erase_if_due(session, organisation.id)

    now = datetime.now(UTC)
    assert await _run_sweep(database, now) == 0
    departed = await _user(database, owner.id)
    assert departed is not None
    assert departed.no_organisation_since == now
    kept = await _user(database, staying.id)
    assert kept is not None
    assert kept.no_organisation_since is None

    assert await _run_sweep(database, now + DEPARTED_GRACE - timedelta(minutes=1)) == 0
    assert await _user(database, owner.id) is not None
    assert await _run_sweep(database, now + DEPARTED_GRACE) == 1
    assert await _user(database, owner.id) is None
    assert await _user(database, staying.id) is not None
    # Idempotent: a second run (a retried job) finds nothing left to do.
    assert await _run_sweep(database, now + DEPARTED_GRACE) == 0

    async with database.transaction() as session:
        erased = (
            await session.execute(select(AuditEvent).where(AuditEvent.action == "account.erased"))
        ).scalar_one()
        assert (await audit.verify_chain(session)).ok
        listed = await audit.events_by_actor(session, audit.Actor.user(owner.id))
    assert erased.target_id == str(owner.id)
    assert erased.details == {"reason": "no organisation for 30 days"}
    assert listed
    assert {event.actor_label for event in listed} == {None}


async def test_joining_an_organisation_again_stops_the_clock(database: Database) -> None:
    organisation, _owner = await make_organisation(database)
    person, membership = await add_member(database, organisation.id, Role.AGENT)
    async with database.transaction() as session:
        await session.delete(await session.get(Membership, membership.id))
    now = datetime.now(UTC)
    await _run_sweep(database, now)
    left = await _user(database, person.id)
    assert left is not None
    assert left.no_organisation_since == now

    async with database.transaction() as session:
        session.add(Membership(organisation_id=organisation.id, user_id=person.id, role=Role.AGENT))
    assert await _run_sweep(database, now + timedelta(hours=1)) == 0
    back = await _user(database, person.id)
    assert back is not None
    assert back.no_organisation_since is None
    assert await _run_sweep(database, now + DEPARTED_GRACE * 2) == 0
    assert await _user(database, person.id) is not None


async def test_a_person_without_an_organisation_still_reaches_their_account(
    browser: Browser, database: Database
) -> None:
    organisation, _owner = await make_organisation(database)
    person, membership = await add_member(database, organisation.id, Role.AGENT)
    async with database.transaction() as session:
        await session.delete(await session.get(Membership, membership.id))
    browser.sign_in(person.email, PASSWORD)
    home = browser.get("/")
    assert home.status_code == 403
    assert "/account" in home.text
    page = browser.get("/account")
    assert page.status_code == 200
    assert person.email in page.text
    exported = browser.get("/api/v1/account/export")
    assert exported.status_code == 200
    assert exported.json()["memberships"] == []
    deleted = browser.post(
        "/account/delete",
        {"password": PASSWORD, "confirmation": "delete my account"},
        csrf_from="/account",
    )
    assert deleted.status_code == 303
    assert await _user(database, person.id) is None
