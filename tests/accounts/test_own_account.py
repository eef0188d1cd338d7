"""A staff user's rights over their own account, through /api/v1/account with their
browser session (real HTTP): a copy of their data, correcting name and e-mail address,
deleting the account."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, text, update

from cybergine.accounts.models import EmailChange, Invitation, Membership, Role, User
from cybergine.accounts.service import own_account
from cybergine.accounts.tokens import keyed_hash
from cybergine.db.engine import Database
from cybergine.db.models import metadata
from cybergine.mail.models import OutboundEmail
from cybergine.privacy import audit, registry
from cybergine.privacy.audit import AuditEvent
from tests.support.browser import Browser
from tests.support.factories import (
    PASSWORD,
    add_member,
    make_api_key,
    make_organisation,
    unique_email,
)
from tests.support.mailbox import emails_to, link_in_last_email

PROBLEM = "application/problem+json"


def api(browser: Browser, method: str, path: str, body: object = None) -> httpx.Response:
    """A call to the API with the browser's session, as the dashboard's scripts make it:
    the session cookie, and the CSRF token of a page in a header."""
    headers = {"accept": "application/json"}
    if method != "GET":
        headers["x-csrf-token"] = browser.csrf("/account")
    return browser.http.request(method, path, json=body, headers=headers)


async def columns_holding(database: Database, needles: list[str]) -> list[str]:
    """``table.column`` of every column of the schema, of a type that can hold a person's
    data, in which one of ``needles`` appears."""
    found = []
    async with database.transaction() as session:
        for table in metadata.sorted_tables:
            for column in table.columns:
                if not registry.may_hold_personal_data(column):
                    continue
                for needle in needles:
                    hits = await session.scalar(
                        text(
                            f'SELECT count(*) FROM "{table.name}" '
                            f'WHERE strpos("{column.name}"::text, :needle) > 0'
                        ),
                        {"needle": needle},
                    )
                    if hits:
                        found.append(f"{table.name}.{column.name}: {needle}")
    return found


async def audit_actions(database: Database) -> list[str]:
    async with database.transaction() as session:
        return list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


async def test_the_export_holds_the_account_and_nobody_else(
    browser: Browser, database: Database
) -> None:
    shop, owner = await make_organisation(database, name="Corner Shop")
    other, _ = await make_organisation(database, name="Other Shop")
    async with database.transaction() as session:
        session.add(Membership(organisation_id=other.id, user_id=owner.id, role=Role.VIEWER))
    colleague, _ = await add_member(database, shop.id, Role.AGENT)
    assert browser.sign_in(owner.email, PASSWORD).status_code == 303
    browser.post(
        "/team/invite", {"email": unique_email("invitee"), "role": "agent"}, csrf_from="/team"
    )
    browser.post(
        "/settings/api-keys", {"name": "till", "role": "viewer"}, csrf_from="/settings/api-keys"
    )

    response = api(browser, "GET", "/api/v1/account/export")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["cache-control"] == "no-store"
    exported = response.json()
    assert exported["profile"]["email"] == owner.email
    assert exported["profile"]["name"] == "Olive Owner"
    assert {(m["organisation_name"], m["role"]) for m in exported["memberships"]} == {
        ("Corner Shop", "owner"),
        ("Other Shop", "viewer"),
    }
    assert len(exported["sessions"]) == 1
    assert [k["name"] for k in exported["api_keys_created"]] == ["till"]
    assert [i["role"] for i in exported["invitations_sent"]] == ["agent"]
    actions = [entry["action"] for entry in exported["audit_trail"]]
    assert {"account.signed_up", "auth.login.succeeded", "team.invitation.created"} <= set(actions)
    raw = response.text
    # Metadata of credentials, never the credentials; nothing of a colleague.
    for absent in ("hash", colleague.email, "invitee-", "Agent Person"):
        assert absent not in raw
    assert (await audit_actions(database))[-1] == "account.exported"


async def test_an_api_key_is_not_a_person(browser: Browser, database: Database) -> None:
    organisation, _owner = await make_organisation(database)
    key = await make_api_key(database, organisation.id, Role.OWNER)
    headers = {"authorization": f"Bearer {key}"}
    for method in ("GET", "PATCH", "DELETE"):
        path = "/api/v1/account/export" if method == "GET" else "/api/v1/account"
        body = {"password": PASSWORD} if method == "DELETE" else {"name": "Key"}
        response = browser.http.request(
            method, path, headers=headers, json=None if method == "GET" else body
        )
        assert response.status_code == 403
        assert response.headers["content-type"].startswith(PROBLEM)
    anonymous = browser.http.get("/api/v1/account", headers={"accept": "application/json"})
    assert anonymous.status_code == 401
    not_a_key = browser.http.get("/api/v1/account", headers={"authorization": "Bearer cg_nope"})
    assert not_a_key.status_code == 401


async def test_changes_need_the_csrf_token(browser: Browser, database: Database) -> None:
    _organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    for method, body in (("PATCH", {"name": "Forged"}), ("DELETE", {"password": PASSWORD})):
        response = browser.http.request(method, "/api/v1/account", json=body)
        assert response.status_code == 403
    async with database.transaction() as session:
        user = await session.get(User, owner.id)
    assert user is not None
    assert user.name == "Olive Owner"


async def test_a_name_is_corrected_and_the_trail_keeps_no_name(
    browser: Browser, database: Database
) -> None:
    _organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    response = api(browser, "PATCH", "/api/v1/account", {"name": "  Olive   Oyl "})
    assert response.status_code == 200
    assert response.json()["name"] == "Olive Oyl"
    assert api(browser, "GET", "/api/v1/account").json()["name"] == "Olive Oyl"
    blank = api(browser, "PATCH", "/api/v1/account", {"name": "   "})
    assert blank.status_code == 422
    assert blank.headers["content-type"].startswith(PROBLEM)
    unknown = api(browser, "PATCH", "/api/v1/account", {"role": "owner"})
    assert unknown.status_code == 422
    async with database.transaction() as session:
        entry = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.action == "account.profile.changed")
            )
        ).scalar_one()
        stored = await session.execute(text("SELECT details::text FROM audit_events"))
    assert entry.details == {"field": "name"}
    assert all("Oyl" not in details for (details,) in stored)


async def test_an_email_change_takes_effect_by_the_link_sent_to_the_new_address(
    browser: Browser, database: Database
) -> None:
    _organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    new_email = unique_email("olive-new")
    response = api(browser, "PATCH", "/api/v1/account", {"email": new_email.upper()})
    assert response.status_code == 200
    assert response.json()["email"] == owner.email  # not yet
    assert response.json()["pending_email"] == new_email
    told = await emails_to(database, owner.email)
    assert told[-1].subject == "Your Cybergine e-mail address is about to change"
    assert new_email in (told[-1].body_text or "")
    link = await link_in_last_email(database, new_email)
    assert link.startswith("/account/email/")

    page = browser.get(link)
    assert page.status_code == 200
    assert browser.post(link, csrf=browser.csrf()).status_code == 303
    assert api(browser, "GET", "/api/v1/account").json() == {
        **response.json(),
        "email": new_email,
        "pending_email": None,
    }
    assert browser.post(link, csrf=browser.csrf("/account")).status_code == 410  # single-use

    other = Browser(str(browser.http.base_url))
    try:
        assert other.sign_in(owner.email, PASSWORD).status_code != 303
        assert other.sign_in(new_email, PASSWORD).status_code == 303
    finally:
        other.close()
    # The trail names the person by their current address only.
    async with database.transaction() as session:
        listed = await audit.events_by_actor(session, audit.Actor.user(owner.id))
    assert {event.actor_label for event in listed} == {new_email}
    actions = await audit_actions(database)
    assert {"account.email_change.requested", "account.email.changed"} <= set(actions)


async def test_an_address_already_in_use_is_a_conflict(
    browser: Browser, database: Database
) -> None:
    organisation, owner = await make_organisation(database)
    colleague, _ = await add_member(database, organisation.id, Role.AGENT)
    browser.sign_in(owner.email, PASSWORD)
    response = api(browser, "PATCH", "/api/v1/account", {"email": colleague.email})
    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["detail"] == "Another account uses this e-mail address."
    assert api(browser, "PATCH", "/api/v1/account", {"email": "not an address"}).status_code == 422
    assert api(browser, "PATCH", "/api/v1/account", {"email": owner.email}).status_code == 422

    # Taken between the request and the confirmation: the link is refused then too.
    wanted = unique_email("wanted")
    assert api(browser, "PATCH", "/api/v1/account", {"email": wanted}).status_code == 200
    link = await link_in_last_email(database, wanted)
    async with database.transaction() as session:
        await session.execute(update(User).where(User.id == colleague.id).values(email=wanted))
    browser.get(link)
    assert browser.post(link, csrf=browser.csrf()).status_code == 409


async def test_an_email_link_is_refused_expired_superseded_or_to_someone_else(
    browser: Browser, second_browser: Browser, database: Database
) -> None:
    organisation, owner = await make_organisation(database)
    colleague, _ = await add_member(database, organisation.id, Role.AGENT)
    browser.sign_in(owner.email, PASSWORD)
    first, second = unique_email("first"), unique_email("second")
    api(browser, "PATCH", "/api/v1/account", {"email": first})
    first_link = await link_in_last_email(database, first)
    api(browser, "PATCH", "/api/v1/account", {"email": second})
    second_link = await link_in_last_email(database, second)

    browser.get(first_link)
    assert browser.post(first_link, csrf=browser.csrf()).status_code == 410  # replaced

    second_browser.sign_in(colleague.email, PASSWORD)
    second_browser.get(second_link)
    assert second_browser.post(second_link, csrf=second_browser.csrf()).status_code == 410

    async with database.transaction() as session:
        await session.execute(
            update(EmailChange).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    browser.get(second_link)
    assert browser.post(second_link, csrf=browser.csrf()).status_code == 410
    async with database.transaction() as session:
        emails = set(await session.scalars(select(User.email)))
    assert {owner.email, colleague.email} <= emails
    assert not emails & {first, second}


async def test_a_new_password_cancels_a_pending_email_change(
    browser: Browser, database: Database
) -> None:
    _organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    stolen = unique_email("thief")
    api(browser, "PATCH", "/api/v1/account", {"email": stolen})
    link = await link_in_last_email(database, stolen)
    changed = browser.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": "a whole new passphrase"},
        csrf_from="/account",
    )
    assert changed.status_code == 303
    browser.get(link)
    assert browser.post(link, csrf=browser.csrf()).status_code == 410
    assert api(browser, "GET", "/api/v1/account").json()["pending_email"] is None


async def test_the_last_owner_cannot_delete_their_account(
    browser: Browser, database: Database
) -> None:
    organisation, owner = await make_organisation(database, name="Corner Shop")
    browser.sign_in(owner.email, PASSWORD)
    wrong = api(browser, "DELETE", "/api/v1/account", {"password": "not my password"})
    assert wrong.status_code == 422
    assert wrong.headers["content-type"].startswith(PROBLEM)
    refused = api(browser, "DELETE", "/api/v1/account", {"password": PASSWORD})
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert "only owner of Corner Shop" in refused.json()["detail"]
    assert api(browser, "GET", "/api/v1/account").status_code == 200  # still there

    # Another owner, then the account can go.
    await add_member(database, organisation.id, Role.OWNER)
    assert api(browser, "DELETE", "/api/v1/account", {"password": PASSWORD}).status_code == 204
    assert api(browser, "GET", "/api/v1/account").status_code == 401


async def test_deleting_an_account_erases_the_person_and_the_trail_still_verifies(
    browser: Browser, second_browser: Browser, database: Database
) -> None:
    organisation, owner = await make_organisation(database)
    person, _ = await add_member(database, organisation.id, Role.ADMIN)
    browser.sign_in(owner.email, PASSWORD)
    # What names the person elsewhere: an invitation to their address from another
    # organisation (and its e-mail), a pending address change.
    _elsewhere, elsewhere_owner = await make_organisation(database, name="Elsewhere")
    inviter = Browser(str(browser.http.base_url))
    try:
        inviter.sign_in(elsewhere_owner.email, PASSWORD)
        inviter.post("/team/invite", {"email": person.email, "role": "viewer"}, csrf_from="/team")
    finally:
        inviter.close()
    second_browser.sign_in(person.email, PASSWORD)
    pending = unique_email("pending")
    api(second_browser, "PATCH", "/api/v1/account", {"email": pending})
    second_browser.post(
        "/settings/api-keys", {"name": "theirs", "role": "viewer"}, csrf_from="/settings/api-keys"
    )

    hashed = [keyed_hash(purpose, person.email) for purpose in ("login-account", "reset-account")]
    needles = [person.email, pending, "Admin Person", *hashed]
    # The scan after the erasure is not vacuous: before it, the person is in every table
    # the registry of personal data lists for staff users (the audit trail's entries
    # hold no label since format 2; entries from before are tested in
    # tests/privacy/test_audit_labels.py).
    held = {found.split(".")[0] for found in await columns_holding(database, needles)}
    assert set(registry.tables(registry.Subject.STAFF_USER)) - {"audit_events"} <= held

    deleted = api(second_browser, "DELETE", "/api/v1/account", {"password": PASSWORD})
    assert deleted.status_code == 204
    assert "cybergine_session" in deleted.headers.get("set-cookie", "")

    async with database.transaction() as session:
        assert await session.get(User, person.id) is None
        assert not list(
            await session.scalars(select(Invitation).where(Invitation.email == person.email))
        )
        addressed = await session.scalars(
            select(OutboundEmail).where(OutboundEmail.to_address.in_([person.email, pending]))
        )
        assert list(addressed) == []
        assert (await audit.verify_chain(session)).ok
        trail = await session.execute(text("SELECT row_to_json(a)::text FROM audit_events a"))
        labels = await session.execute(
            text("SELECT row_to_json(l)::text FROM audit_actor_labels l")
        )
        remaining = [row for (row,) in [*trail.all(), *labels.all()]]
        listed = await audit.list_events(session, organisation_id=organisation.id)
    for row in remaining:
        for personal in (person.email, pending, "Admin Person"):
            assert personal not in row
    # Nor anywhere else: every column of every table that can hold a person's data, with
    # the keyed hashes the throttles count an address by.
    assert await columns_holding(database, needles) == []
    # What they did stays, by id, with no name.
    theirs = [event for event in listed if event.actor_id == str(person.id)]
    assert theirs
    assert all(event.actor_label is None for event in theirs)
    assert "account.erased" in await audit_actions(database)
    # The owner's organisation is untouched, and the owner still named.
    assert any(event.actor_label == owner.email for event in listed)
    assert json.loads(api(browser, "GET", "/api/v1/account").text)["email"] == owner.email
    # (Last: a sign-in attempt with the address is counted again, as anyone's would be.)
    assert second_browser.sign_in(person.email, PASSWORD).status_code != 303


async def test_spent_confirmation_links_are_pruned(browser: Browser, database: Database) -> None:
    _organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    for stem in ("old", "current"):
        api(browser, "PATCH", "/api/v1/account", {"email": unique_email(stem)})
    later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    async with database.transaction() as session:
        await own_account.prune_expired(session, now=later)
        left = list(await session.scalars(select(EmailChange.new_email)))
    # The replaced link is gone; the pending one stays until it expires.
    assert [address.split("-")[0] for address in left] == ["current"]
    async with database.transaction() as session:
        await own_account.prune_expired(session, now=later + timedelta(days=1))
        assert list(await session.scalars(select(EmailChange))) == []
