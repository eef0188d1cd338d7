"""Sign-up, sign-in, sign-out, sessions and CSRF, through real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cybergine.accounts.models import LoginAttempt, Membership, Organisation, User, UserSession
from cybergine.accounts.service import signup
from cybergine.accounts.service.login import (
    MAX_FAILURES_PER_ACCOUNT,
    MAX_FAILURES_PER_IP,
    THROTTLED,
    WRONG_CREDENTIALS,
)
from cybergine.app import create_app
from cybergine.db.engine import Database
from cybergine.settings import load_settings
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, make_organisation, make_user, unique_email
from tests.support.mailbox import emails_to, link_in_last_email
from tests.support.server import LiveServer


async def _count(database: Database, model: type) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def test_signed_out_dashboard_redirects_to_sign_in(browser: Browser) -> None:
    response = browser.get("/team")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/team"


async def test_sign_up_creates_an_organisation_with_its_owner(
    browser: Browser, database: Database
) -> None:
    email = unique_email()
    asked = browser.sign_up(email=email, organisation="Bloom & Co")
    assert asked.status_code == 200
    assert "Check your e-mail" in asked.text
    assert email in asked.text
    assert "/dev/outbox" not in asked.text  # not embedded: e-mail really leaves
    assert browser.session_cookie is None
    assert await _count(database, User) == 0  # nothing exists before the link is used

    link = await link_in_last_email(database, email)
    assert link.startswith("/signup/confirm/")
    page = browser.get(link)
    assert page.status_code == 200
    assert "Bloom &amp; Co" in page.text
    assert browser.finish_sign_up(link, PASSWORD).status_code == 303
    assert browser.session_cookie
    home = browser.get("/")
    assert home.status_code == 200
    assert "Bloom &amp; Co" in home.text
    assert "You are owner here." in home.text
    async with database.transaction() as session:
        user = (await session.execute(select(User).where(User.email == email))).scalar_one()
        membership = (
            await session.execute(select(Membership).where(Membership.user_id == user.id))
        ).scalar_one()
        assert membership.role.value == "owner"
        assert PASSWORD not in user.password_hash
        assert user.password_hash.startswith("$argon2id$")


async def test_sign_up_answers_the_same_whether_or_not_the_address_has_an_account(
    browser: Browser, database: Database
) -> None:
    _, owner = await make_organisation(database)
    new_address = unique_email()
    registered = browser.sign_up(email=owner.email.upper(), organisation="Second")
    unregistered = browser.sign_up(email=new_address, organisation="Second")
    assert registered.status_code == unregistered.status_code == 200
    assert registered.text.replace(owner.email, "@") == unregistered.text.replace(new_address, "@")

    [notice] = await emails_to(database, owner.email)
    assert notice.subject == "You already have a Cybergine account"
    assert "/login" in (notice.body_text or "")
    assert "/password/forgot" in (notice.body_text or "")
    assert "/signup/confirm/" not in (notice.body_text or "")
    assert (await link_in_last_email(database, new_address)).startswith("/signup/confirm/")
    assert await _count(database, User) == 1
    assert await _count(database, Organisation) == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "not-an-email", "valid e-mail"),
        ("name", "   ", "your name"),
        ("organisation", "   ", "organisation"),
    ],
)
async def test_sign_up_rejects_bad_input_clearly(
    browser: Browser, database: Database, field: str, value: str, message: str
) -> None:
    data = {"email": unique_email(), "name": "Sam", "organisation": "Shop"}
    data[field] = value
    response = browser.sign_up(
        email=data["email"], name=data["name"], organisation=data["organisation"]
    )
    assert response.status_code == 422
    assert message in response.text
    assert await emails_to(database, data["email"]) == []


async def test_finishing_sign_up_needs_a_good_password(
    browser: Browser, database: Database
) -> None:
    email = unique_email()
    browser.sign_up(email=email)
    link = await link_in_last_email(database, email)
    weak = browser.finish_sign_up(link, "short")
    assert weak.status_code == 422
    assert "at least 10" in weak.text
    assert await _count(database, User) == 0
    assert browser.finish_sign_up(link, PASSWORD).status_code == 303


async def test_a_sign_up_link_creates_one_account_only(
    browser: Browser, second_browser: Browser, database: Database
) -> None:
    email = unique_email()
    browser.sign_up(email=email)
    link = await link_in_last_email(database, email)
    assert browser.finish_sign_up(link, PASSWORD).status_code == 303

    again = second_browser.get(link)
    assert again.status_code == 200
    assert "already exists" in again.text
    replay = second_browser.post(
        link, {"password": "another password 1"}, csrf=second_browser.csrf()
    )
    assert replay.status_code == 409
    assert second_browser.session_cookie is None
    assert await _count(database, User) == 1
    assert await _count(database, Organisation) == 1


async def test_a_forged_or_expired_sign_up_link_is_refused(
    browser: Browser, database: Database
) -> None:
    email = unique_email()
    browser.sign_up(email=email)
    token = (await link_in_last_email(database, email)).rsplit("/", 1)[1]
    body, seal = token.split(".")
    forged_body = signup.seal_link(
        signup.PendingSignUp(
            email="victim@example.com",
            name="Mallory",
            organisation_name="Evil",
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
    ).split(".")[0]
    expired = signup.seal_link(
        signup.PendingSignUp(
            email=email,
            name="Sam",
            organisation_name="Shop",
            expires_at=datetime.now(UTC) - timedelta(minutes=1),
        )
    )
    for bad in (f"{forged_body}.{seal}", f"{body}.{'0' * 64}", body, "garbage", expired):
        page = browser.get(f"/signup/confirm/{bad}")
        assert page.status_code == 410, bad
        assert browser.finish_sign_up(f"/signup/confirm/{bad}", PASSWORD).status_code in {
            403,  # the error page carries no form, hence no CSRF token for the post
            410,
        }
    assert "expired" in browser.get(f"/signup/confirm/{expired}").text
    assert await _count(database, User) == 0


async def test_sign_up_is_limited_per_address_and_per_ip_address(
    browser: Browser, database: Database
) -> None:
    email = unique_email()
    for _ in range(signup.PER_ADDRESS.maximum):
        assert browser.sign_up(email=email).status_code == 200
    refused = browser.sign_up(email=email)
    assert refused.status_code == 429
    assert "Too many sign-up requests" in refused.text
    assert len(await emails_to(database, email)) == signup.PER_ADDRESS.maximum

    for _ in range(signup.PER_IP.maximum - signup.PER_ADDRESS.maximum):
        assert browser.sign_up(email=unique_email()).status_code == 200
    other = unique_email()
    assert browser.sign_up(email=other).status_code == 429
    assert await emails_to(database, other) == []


async def test_in_development_the_check_your_email_page_links_to_the_outbox(
    database: Database, database_url: str, tmp_path: Path, key_env: dict[str, str]
) -> None:
    embedded = load_settings(
        data_dir=tmp_path,
        secret_key=key_env["CYBERGINE_SECRET_KEY"],
        encryption_keys=key_env["CYBERGINE_ENCRYPTION_KEYS"],
    )
    with LiveServer(create_app(embedded, database_url=database_url, run_worker=False)) as server:
        developer = Browser(server.url)
        try:
            asked = developer.sign_up(email=unique_email())
        finally:
            developer.close()
    assert asked.status_code == 200
    assert '<a href="/dev/outbox">outbox</a>' in asked.text


async def test_session_cookie_is_httponly_and_samesite_lax(
    browser: Browser, database: Database
) -> None:
    user = await make_user(database)
    response = browser.sign_in(user.email, PASSWORD)
    assert response.status_code == 303
    cookie = SimpleCookie(response.headers["set-cookie"])["cybergine_session"]
    assert cookie["httponly"]
    assert cookie["samesite"].lower() == "lax"
    assert not cookie["secure"]  # plain HTTP here; CYBERGINE_BEHIND_HTTPS adds Secure
    async with database.transaction() as session:
        stored = (await session.execute(select(UserSession.token_hash))).scalar_one()
    assert stored != cookie.value  # only a hash of the token is stored


async def test_wrong_password_and_unknown_email_look_the_same(
    browser: Browser, database: Database
) -> None:
    user = await make_user(database)
    wrong = browser.sign_in(user.email, "wrong password here")
    unknown = browser.sign_in(unique_email(), "wrong password here")
    assert wrong.status_code == unknown.status_code == 400
    assert WRONG_CREDENTIALS.replace("'", "&#39;") in wrong.text
    assert WRONG_CREDENTIALS.replace("'", "&#39;") in unknown.text
    assert browser.session_cookie is None


async def test_account_is_throttled_even_for_the_right_password(
    browser: Browser, database: Database
) -> None:
    user = await make_user(database)
    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        assert browser.sign_in(user.email, "wrong password here").status_code == 400
    response = browser.sign_in(user.email, PASSWORD)
    assert response.status_code == 429
    assert THROTTLED in response.text
    assert browser.session_cookie is None


async def test_unknown_addresses_are_throttled_the_same_way(browser: Browser) -> None:
    email = unique_email()
    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        browser.sign_in(email, "wrong password here")
    assert browser.sign_in(email, "wrong password here").status_code == 429


async def test_an_ip_address_is_throttled_across_accounts(
    browser: Browser, database: Database
) -> None:
    user = await make_user(database)
    for _ in range(MAX_FAILURES_PER_IP):
        browser.sign_in(unique_email(), "wrong password here")
    assert browser.sign_in(user.email, PASSWORD).status_code == 429


async def test_attempts_are_stored_without_email_or_ip(
    browser: Browser, database: Database
) -> None:
    email = unique_email()
    browser.sign_in(email, "wrong password here")
    async with database.transaction() as session:
        hashes = list((await session.execute(select(LoginAttempt.key_hash))).scalars())
    assert len(hashes) == 2
    assert all(email not in h and "127.0.0.1" not in h for h in hashes)


async def test_sign_out_ends_the_session_on_the_server(
    browser: Browser, database: Database
) -> None:
    user = await make_user(database)
    browser.sign_in(user.email, PASSWORD)
    stolen = browser.session_cookie
    assert stolen
    browser.get("/account")
    assert browser.post("/logout", csrf=browser.csrf()).status_code == 303
    replay = Browser(str(browser.http.base_url))
    try:
        replay.http.cookies.set("cybergine_session", stolen)
        assert replay.get("/").status_code == 303  # back to sign-in
    finally:
        replay.close()
    assert await _count(database, UserSession) == 0


@pytest.mark.parametrize("cookie", ["garbage", "", "x" * 5000, "' OR 1=1 --"])
def test_tampered_session_cookies_are_signed_out(browser: Browser, cookie: str) -> None:
    browser.http.cookies.set("cybergine_session", cookie)
    response = browser.get("/")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_sign_in_form_without_csrf_token_is_refused(
    browser: Browser, database: Database
) -> None:
    user = await make_user(database)
    browser.get("/login")
    response = browser.post("/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 403
    assert browser.session_cookie is None


async def test_forged_csrf_token_is_refused_on_a_signed_in_form(
    browser: Browser, second_browser: Browser, database: Database
) -> None:
    organisation, owner = await make_organisation(database)
    intruder = await make_user(database)
    browser.sign_in(owner.email, PASSWORD)
    second_browser.sign_in(intruder.email, PASSWORD)
    other_token = second_browser.csrf("/login")  # a valid token of another browser
    for token in (None, "forged", other_token):
        response = browser.post("/settings", {"name": "Hijacked"}, csrf=token)
        assert response.status_code == 403, token
    async with database.transaction() as session:
        assert (await session.get(Organisation, organisation.id)).name == "Acme"  # type: ignore[union-attr]


async def test_csrf_token_in_header_works_for_htmx(browser: Browser, database: Database) -> None:
    _, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    token = browser.csrf("/settings")
    response = browser.http.post(
        "/settings", data={"name": "Renamed"}, headers={"x-csrf-token": token}
    )
    assert response.status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
async def test_sign_in_never_redirects_off_site(
    browser: Browser, database: Database, target: str
) -> None:
    user = await make_user(database)
    response = browser.sign_in(user.email, PASSWORD, next=target)
    assert response.headers["location"] == "/"


async def test_sign_in_returns_to_the_page_asked_for(browser: Browser, database: Database) -> None:
    _, owner = await make_organisation(database)
    response = browser.sign_in(owner.email, PASSWORD, next="/team")
    assert response.headers["location"] == "/team"


def test_signed_out_root_redirects_to_sign_in_whatever_the_client_accepts(
    live_server: LiveServer,
) -> None:
    with live_server.client() as client:  # no Accept header, like curl
        response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/"
