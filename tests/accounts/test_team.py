"""Invitations, roles and removal: the rules hold through the dashboard and the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from cybergine.accounts.models import Invitation, Membership, Role
from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from tests.support.browser import Browser
from tests.support.factories import (
    PASSWORD,
    add_member,
    make_api_key,
    make_organisation,
    make_user,
    unique_email,
)
from tests.support.mailbox import link_in_last_email
from tests.support.server import LiveServer


async def _invite(browser: Browser, email: str, role: str = "agent") -> httpx.Response:
    return browser.post("/team/invite", {"email": email, "role": role}, csrf_from="/team")


async def test_invited_person_creates_an_account_and_joins_with_the_role(
    browser: Browser, second_browser: Browser, database: Database
) -> None:
    _organisation, owner = await make_organisation(database, name="Corner Shop")
    browser.sign_in(owner.email, PASSWORD)
    invitee = unique_email("agent")
    assert (await _invite(browser, invitee)).status_code == 303
    link = await link_in_last_email(database, invitee)

    page = second_browser.get(link)
    assert page.status_code == 200
    assert "Corner Shop" in page.text
    joined = second_browser.post(
        f"{link}/register", {"name": "Alex Agent", "password": PASSWORD}, csrf=second_browser.csrf()
    )
    assert joined.status_code == 303
    home = second_browser.get("/")
    assert "You are agent here." in home.text

    reused = Browser(str(browser.http.base_url))
    try:
        assert reused.get(link).status_code == 410
    finally:
        reused.close()
    async with database.transaction() as session:
        actions = list((await session.execute(select(AuditEvent.action))).scalars())
    assert "team.invitation.created" in actions
    assert "team.invitation.accepted" in actions


async def test_existing_user_signs_in_to_accept(
    browser: Browser, second_browser: Browser, database: Database
) -> None:
    _organisation, owner = await make_organisation(database)
    person = await make_user(database)
    browser.sign_in(owner.email, PASSWORD)
    await _invite(browser, person.email, "viewer")
    link = await link_in_last_email(database, person.email)
    assert "Sign in" in second_browser.get(link).text
    second_browser.sign_in(person.email, PASSWORD, next=link)
    second_browser.get(link)
    assert second_browser.post(f"{link}/accept", csrf=second_browser.csrf()).status_code == 303
    assert "You are viewer here." in second_browser.get("/").text


async def test_invitation_for_someone_else_cannot_be_accepted(
    browser: Browser, second_browser: Browser, database: Database
) -> None:
    _, owner = await make_organisation(database)
    bystander = await make_user(database)
    browser.sign_in(owner.email, PASSWORD)
    invitee = unique_email()
    await _invite(browser, invitee)
    link = await link_in_last_email(database, invitee)
    second_browser.sign_in(bystander.email, PASSWORD)
    second_browser.get(link)
    response = second_browser.post(f"{link}/accept", csrf=second_browser.csrf())
    assert response.status_code == 422
    async with database.transaction() as session:
        member = await session.scalar(select(Membership).where(Membership.user_id == bystander.id))
    assert member is None


@pytest.mark.parametrize("how", ["expired", "revoked"])
async def test_expired_and_withdrawn_invitations_are_refused(
    browser: Browser, second_browser: Browser, database: Database, how: str
) -> None:
    _, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    invitee = unique_email()
    await _invite(browser, invitee)
    link = await link_in_last_email(database, invitee)
    async with database.transaction() as session:
        values = (
            {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}
            if how == "expired"
            else {"revoked_at": datetime.now(UTC)}
        )
        await session.execute(update(Invitation).values(**values))
    page = second_browser.get(link)
    assert page.status_code == 410
    register = second_browser.post(
        f"{link}/register",
        {"name": "Late", "password": PASSWORD},
        csrf=second_browser.csrf("/login"),
    )
    assert register.status_code == 410


async def test_reinviting_replaces_the_pending_invitation(
    browser: Browser, database: Database
) -> None:
    _, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    invitee = unique_email()
    await _invite(browser, invitee)
    first = await link_in_last_email(database, invitee)
    await _invite(browser, invitee, "viewer")
    assert browser.get(first).status_code == 410
    second = await link_in_last_email(database, invitee)
    assert browser.get(second).status_code == 200


async def test_inviting_a_member_again_is_a_conflict(browser: Browser, database: Database) -> None:
    organisation, owner = await make_organisation(database)
    member, _ = await add_member(database, organisation.id, Role.AGENT)
    browser.sign_in(owner.email, PASSWORD)
    response = await _invite(browser, member.email)
    assert response.status_code == 409
    assert "already a member" in response.text


async def test_admins_cannot_hand_out_or_touch_the_owner_role(
    live_server: LiveServer, database: Database
) -> None:
    organisation, _owner = await make_organisation(database)
    _, owner_membership = await add_member(database, organisation.id, Role.OWNER)
    admin_key = await make_api_key(database, organisation.id, Role.ADMIN)
    with live_server.client(headers={"authorization": f"Bearer {admin_key}"}) as api:
        invite_owner = api.post(
            "/api/v1/invitations", json={"email": unique_email(), "role": "owner"}
        )
        assert invite_owner.status_code == 403
        demote = api.patch(f"/api/v1/members/{owner_membership.id}", json={"role": "viewer"})
        assert demote.status_code == 403
        remove = api.delete(f"/api/v1/members/{owner_membership.id}")
        assert remove.status_code == 403


async def test_the_last_owner_cannot_leave_or_be_demoted(
    live_server: LiveServer, database: Database
) -> None:
    organisation, _owner = await make_organisation(database)
    key = await make_api_key(database, organisation.id, Role.OWNER)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        (member,) = api.get("/api/v1/members").json()
        assert (
            api.patch(f"/api/v1/members/{member['id']}", json={"role": "admin"}).status_code == 409
        )
        assert api.delete(f"/api/v1/members/{member['id']}").status_code == 409
        assert api.get("/api/v1/members").json()[0]["role"] == "owner"


async def test_role_change_and_removal_are_audited(
    live_server: LiveServer, database: Database
) -> None:
    organisation, _ = await make_organisation(database)
    _, membership = await add_member(database, organisation.id, Role.AGENT)
    key = await make_api_key(database, organisation.id, Role.ADMIN)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        changed = api.patch(f"/api/v1/members/{membership.id}", json={"role": "viewer"})
        assert changed.status_code == 200
        assert changed.json()["role"] == "viewer"
        assert api.delete(f"/api/v1/members/{membership.id}").status_code == 204
        events = api.get("/api/v1/audit-events").json()
    actions = [e["action"] for e in events]
    assert actions[:2] == ["team.member.removed", "team.role.changed"]
    assert events[1]["details"] == {"from": "agent", "to": "viewer"}
    assert events[0]["actor_type"] == "api_key"


async def test_viewer_sees_the_team_but_cannot_change_it(
    browser: Browser, database: Database
) -> None:
    organisation, _ = await make_organisation(database)
    viewer, _ = await add_member(database, organisation.id, Role.VIEWER)
    _, agent_membership = await add_member(database, organisation.id, Role.AGENT)
    browser.sign_in(viewer.email, PASSWORD)
    page = browser.get("/team")
    assert page.status_code == 200
    assert "Invite someone" not in page.text
    response = browser.post(f"/team/members/{agent_membership.id}/remove", csrf=browser.csrf())
    assert response.status_code == 403
    async with database.transaction() as session:
        denial = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "auth.permission.denied")
        )
    assert denial is not None
    assert denial.details["permission"] == "team:manage"
    assert denial.organisation_id == organisation.id


async def test_a_role_changes_only_when_the_change_is_submitted(
    browser: Browser, database: Database
) -> None:
    organisation, owner = await make_organisation(database)
    agent, membership = await add_member(database, organisation.id, Role.AGENT)
    browser.sign_in(owner.email, PASSWORD)

    page = browser.get("/team").text
    form_start = page.index(f'action="/team/members/{membership.id}/role"')
    form = page[form_start : page.index("</form>", form_start)]
    # Choosing in the select submits nothing: an explicit button does, after a
    # confirmation naming the person.
    assert "data-autosubmit" not in form
    assert 'data-testid="role-change"' in form
    assert f"Change the role of {agent.name} to {{role}}?" in form

    async def role() -> Role:
        async with database.transaction() as session:
            found = await session.get(Membership, membership.id)
            assert found is not None
            return found.role

    assert await role() is Role.AGENT
    changed = browser.post(
        f"/team/members/{membership.id}/role", {"role": "viewer"}, csrf_from="/team"
    )
    assert changed.status_code == 303
    assert await role() is Role.VIEWER
