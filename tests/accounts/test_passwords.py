"""Password reset by e-mail link, and password change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from cybergine.accounts.models import PasswordResetToken, UserSession
from cybergine.accounts.service import password_reset
from cybergine.db.engine import Database
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, make_organisation, unique_email
from tests.support.mailbox import emails_to, link_in_last_email

NEW_PASSWORD = "a brand new passphrase"


async def test_reset_request_answers_the_same_for_unknown_addresses(
    browser: Browser, database: Database
) -> None:
    _, owner = await make_organisation(database)
    known = browser.post("/password/forgot", {"email": owner.email}, csrf_from="/password/forgot")
    unknown_address = unique_email()
    unknown = browser.post(
        "/password/forgot", {"email": unknown_address}, csrf_from="/password/forgot"
    )
    assert known.status_code == unknown.status_code == 303
    assert known.headers["location"] == unknown.headers["location"]
    assert len(await emails_to(database, owner.email)) == 1
    assert await emails_to(database, unknown_address) == []


async def test_reset_link_sets_the_password_once_and_signs_out_everywhere(
    browser: Browser, second_browser: Browser, database: Database
) -> None:
    _, owner = await make_organisation(database)
    second_browser.sign_in(owner.email, PASSWORD)  # another device, signed in
    browser.post("/password/forgot", {"email": owner.email}, csrf_from="/password/forgot")
    link = await link_in_last_email(database, owner.email)

    page = browser.get(link)
    assert page.status_code == 200
    assert owner.email in page.text
    assert browser.post(link, {"password": NEW_PASSWORD}, csrf=browser.csrf()).status_code == 303

    assert second_browser.get("/").status_code == 303  # signed out
    assert browser.sign_in(owner.email, PASSWORD).status_code == 400
    assert browser.sign_in(owner.email, NEW_PASSWORD).status_code == 303

    reused = browser.get(link)
    assert reused.status_code == 410
    assert "already used" in reused.text


async def test_weak_new_password_is_refused_and_the_link_still_works(
    browser: Browser, database: Database
) -> None:
    _, owner = await make_organisation(database)
    browser.post("/password/forgot", {"email": owner.email}, csrf_from="/password/forgot")
    link = await link_in_last_email(database, owner.email)
    browser.get(link)
    response = browser.post(link, {"password": "short"}, csrf=browser.csrf())
    assert response.status_code == 422
    assert "at least 10" in response.text
    assert (
        browser.post(link, {"password": NEW_PASSWORD}, csrf=browser.csrf(link)).status_code == 303
    )


async def test_expired_reset_link_is_refused(browser: Browser, database: Database) -> None:
    _, owner = await make_organisation(database)
    browser.post("/password/forgot", {"email": owner.email}, csrf_from="/password/forgot")
    link = await link_in_last_email(database, owner.email)
    async with database.transaction() as session:
        await session.execute(
            update(PasswordResetToken).values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    response = browser.get(link)
    assert response.status_code == 410
    assert "expired" in response.text


def test_made_up_reset_link_is_refused(browser: Browser) -> None:
    assert browser.get("/password/reset/not-a-real-token").status_code == 410


async def test_change_password_keeps_this_browser_and_signs_out_the_others(
    browser: Browser, second_browser: Browser, database: Database
) -> None:
    _, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    second_browser.sign_in(owner.email, PASSWORD)
    response = browser.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        csrf_from="/account",
    )
    assert response.status_code == 303
    assert browser.get("/").status_code == 200
    assert second_browser.get("/").status_code == 303
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(UserSession)) == 1


async def test_change_password_needs_the_current_one(browser: Browser, database: Database) -> None:
    _, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    response = browser.post(
        "/account/password",
        {"current_password": "not my password", "new_password": NEW_PASSWORD},
        csrf_from="/account",
    )
    assert response.status_code == 422
    assert "current password" in response.text
    browser.post("/logout", csrf=browser.csrf("/account"))
    assert browser.sign_in(owner.email, PASSWORD).status_code == 303


async def test_reset_requests_are_limited_per_address(browser: Browser, database: Database) -> None:
    _, owner = await make_organisation(database)
    for _ in range(password_reset.PER_ADDRESS.maximum):
        sent = browser.post(
            "/password/forgot", {"email": owner.email}, csrf_from="/password/forgot"
        )
        assert sent.status_code == 303
    refused = browser.post("/password/forgot", {"email": owner.email}, csrf_from="/password/forgot")
    assert refused.status_code == 429
    assert "Too many password reset requests" in refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert len(await emails_to(database, owner.email)) == password_reset.PER_ADDRESS.maximum


async def test_unknown_addresses_are_limited_the_same_way(browser: Browser) -> None:
    unknown = unique_email()
    statuses = [
        browser.post(
            "/password/forgot", {"email": unknown}, csrf_from="/password/forgot"
        ).status_code
        for _ in range(password_reset.PER_ADDRESS.maximum + 1)
    ]
    assert statuses == [303] * password_reset.PER_ADDRESS.maximum + [429]


async def test_reset_requests_are_limited_per_ip_address(
    browser: Browser, database: Database
) -> None:
    for _ in range(password_reset.PER_IP.maximum):
        browser.post("/password/forgot", {"email": unique_email()}, csrf_from="/password/forgot")
    _, owner = await make_organisation(database)
    refused = browser.post("/password/forgot", {"email": owner.email}, csrf_from="/password/forgot")
    assert refused.status_code == 429
    assert await emails_to(database, owner.email) == []


async def test_using_one_reset_link_voids_the_others(browser: Browser, database: Database) -> None:
    _, owner = await make_organisation(database)
    browser.post("/password/forgot", {"email": owner.email}, csrf_from="/password/forgot")
    first = await link_in_last_email(database, owner.email)
    browser.post("/password/forgot", {"email": owner.email}, csrf_from="/password/forgot")
    second = await link_in_last_email(database, owner.email)
    assert first != second
    assert (
        browser.post(second, {"password": NEW_PASSWORD}, csrf=browser.csrf(second)).status_code
        == 303
    )

    stale = browser.get(first)
    assert stale.status_code == 410
    assert "password was changed" in stale.text
    assert browser.sign_in(owner.email, NEW_PASSWORD).status_code == 303


async def test_changing_the_password_voids_reset_links(
    browser: Browser, database: Database
) -> None:
    _, owner = await make_organisation(database)
    browser.post("/password/forgot", {"email": owner.email}, csrf_from="/password/forgot")
    link = await link_in_last_email(database, owner.email)
    browser.sign_in(owner.email, PASSWORD)
    changed = browser.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        csrf_from="/account",
    )
    assert changed.status_code == 303
    assert browser.get(link).status_code == 410
