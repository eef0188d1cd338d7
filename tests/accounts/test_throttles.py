"""The throttles on sign-in, password reset and sign-up hold when attempts arrive all at
once: real concurrent HTTP requests against the live server, counted by what the server
answered and what it wrote down."""

from __future__ import annotations

import asyncio
import html
import re

import httpx
import pytest
from sqlalchemy import func, select

from cybergine.accounts import throttle
from cybergine.accounts.service import login, password_reset, signup
from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from tests.support.factories import make_user, unique_email
from tests.support.mailbox import emails_to
from tests.support.server import LiveServer

_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
CONCURRENT = 40


async def post_all_at_once(
    server: LiveServer, path: str, forms: list[dict[str, str]], *, csrf_from: str
) -> list[int]:
    """Posts every form at the same moment from one browser (one cookie jar, one CSRF
    token), and returns the status codes."""
    async with httpx.AsyncClient(
        base_url=server.url,
        timeout=60,
        headers={"accept": "text/html"},
        limits=httpx.Limits(max_connections=len(forms)),
    ) as client:
        page = await client.get(csrf_from)
        match = _CSRF.search(page.text)
        assert match
        token = html.unescape(match.group(1))
        responses = await asyncio.gather(
            *(client.post(path, data={**form, "csrf_token": token}) for form in forms)
        )
    return [response.status_code for response in responses]


async def _audited(database: Database, action: str) -> int:
    async with database.transaction() as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        )
    return int(count or 0)


async def test_concurrent_wrong_passwords_check_no_more_than_the_limit(
    live_server: LiveServer, database: Database
) -> None:
    user = await make_user(database)
    forms = [
        {"email": user.email, "password": f"wrong guess {i}", "next": "/"}
        for i in range(CONCURRENT)
    ]
    statuses = await post_all_at_once(live_server, "/login", forms, csrf_from="/login")

    checked = statuses.count(400)  # "wrong password": the guess was verified
    assert checked + statuses.count(429) == CONCURRENT, statuses
    assert 1 <= checked <= login.MAX_FAILURES_PER_ACCOUNT, statuses
    assert await _audited(database, "auth.login.failed") == checked
    assert await _audited(database, "auth.login.throttled") == CONCURRENT - checked


async def test_concurrent_reset_requests_send_no_more_than_the_limit(
    live_server: LiveServer, database: Database
) -> None:
    user = await make_user(database)
    forms = [{"email": user.email}] * CONCURRENT
    statuses = await post_all_at_once(
        live_server, "/password/forgot", forms, csrf_from="/password/forgot"
    )
    sent = len(await emails_to(database, user.email))
    assert 1 <= sent <= password_reset.PER_ADDRESS.maximum, statuses
    assert statuses.count(303) == sent
    assert statuses.count(429) == CONCURRENT - sent, statuses


async def test_concurrent_sign_ups_send_no_more_than_the_limit(
    live_server: LiveServer, database: Database
) -> None:
    email = unique_email()
    forms = [{"name": "Sam", "email": email, "organisation_name": "Shop"}] * CONCURRENT
    statuses = await post_all_at_once(live_server, "/signup", forms, csrf_from="/signup")
    sent = len(await emails_to(database, email))
    assert 1 <= sent <= signup.PER_ADDRESS.maximum, statuses
    assert statuses.count(200) == sent
    assert statuses.count(429) == CONCURRENT - sent, statuses


@pytest.mark.parametrize(
    ("ip", "block"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # the same home: the same count
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("unknown", "unknown"),
    ],
)
def test_ipv6_clients_are_counted_per_64_block(ip: str, block: str) -> None:
    assert throttle.address_block(ip) == block
