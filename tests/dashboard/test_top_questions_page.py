"""The Top questions page over real HTTP on the history of ``tests/analytics/
gap_history.py``: the same groups and counts as ``GET /api/v1/analytics/top-questions``,
the conversations behind a group in the inbox (exactly those, with the way back), the
customers' text escaped, "Answer this" offered only where the assistant could not answer
and only to those who may write answers, and values that are not filters as messages."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

from markupsafe import escape
from sqlalchemy import select

from cybergine.accounts.models import Role
from cybergine.conversations.models import Conversation
from cybergine.db.engine import Database
from cybergine.knowledge.embeddings import LocalMiniLM
from tests.analytics.gap_history import RETURNS, ask, collect, seeded
from tests.support.factories import make_api_key
from tests.support.inbox import member, rows, signed_in
from tests.support.server import LiveServer

PAGE = "/analytics/top-questions"
_ROW = re.compile(
    r'<tr data-testid="top-question" data-group="(?P<id>[0-9a-f-]+)">.*?'
    r'data-testid="question-count">(?P<count>\d+)</td>\s*<td><a href="(?P<href>[^"]+)"'
    r"[^>]*>(?P<conversations>\d+)</a></td>\s*"
    r'<td data-testid="question-grounded">(?P<grounded>\d+) \(',
    re.DOTALL,
)
_ARTICLE = re.compile(
    r'<article class="panel gap"[^>]*data-group="(?P<id>[0-9a-f-]+)">(?P<body>.*?)</article>',
    re.DOTALL,
)


def _query(first: datetime) -> dict[str, str]:
    return {"from": first.date().isoformat(), "to": datetime.now(UTC).date().isoformat()}


def _path(first: datetime) -> str:
    query = _query(first)
    return f"{PAGE}?from={query['from']}&to={query['to']}"


async def test_the_page_shows_what_the_api_says_and_drills_into_the_inbox(
    live_server: LiveServer, database: Database
) -> None:
    minilm = LocalMiniLM()
    history, _ = await seeded(database, minilm)
    admin = await member(database, history.organisation_id, Role.ADMIN)
    key = await make_api_key(database, history.organisation_id, Role.VIEWER)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        body: dict[str, Any] = api.get(
            "/api/v1/analytics/top-questions", params=_query(history.first)
        ).json()
    with signed_in(live_server.url, admin) as browser:
        page = browser.get(_path(history.first))
        assert page.status_code == 200, page.text
        assert 'aria-current="page">Top questions</a>' in page.text
        assert f"{body['questions']} questions from" in page.text
        shown = [
            (m["id"], int(m["count"]), int(m["conversations"]), int(m["grounded"]))
            for m in _ROW.finditer(page.text)
        ]
        assert shown == [
            (g["id"], g["questions"], g["conversations"], g["grounded"]) for g in body["groups"]
        ]
        assert shown[1][1:] == (4, 3, 4)  # returns, answered every time

        behind = {m["id"]: html.unescape(m["href"]) for m in _ROW.finditer(page.text)}
        inbox = browser.get(behind[shown[1][0]])
        assert inbox.status_code == 200
        assert "Conversations behind <strong>a top question&#39;s questions</strong>" in inbox.text
        assert "Back to top questions" in inbox.text
        assert {row.id for row in rows(inbox.text)} == {
            str(c) for c in history.return_conversations
        }

        # "Answer this" where the assistant could not answer: shipping, not returns.
        articles = {m["id"]: m["body"] for m in _ARTICLE.finditer(page.text)}
        assert 'data-testid="question-answer"' in articles[shown[0][0]]
        assert 'data-testid="question-answer"' not in articles[shown[1][0]]
        for question in RETURNS:
            assert str(escape(question)) in articles[shown[1][0]]


async def test_a_viewer_reads_it_escaped_and_is_not_offered_to_answer(
    live_server: LiveServer, database: Database
) -> None:
    minilm = LocalMiniLM()
    history, _ = await seeded(database, minilm)
    hostile = '"><img src=x onerror=alert(1)>'
    async with database.transaction() as session:
        conversation = await session.scalar(
            select(Conversation).where(Conversation.organisation_id == history.organisation_id)
        )
        assert conversation is not None
        await ask(session, conversation, datetime.now(UTC), hostile, answer="grounded")
    await collect(database, history.organisation_id, minilm)
    viewer = await member(database, history.organisation_id, Role.VIEWER)
    with signed_in(live_server.url, viewer) as browser:
        page = browser.get(_path(history.first)).text
        assert hostile not in page
        assert str(escape(hostile)) in page
        assert 'data-testid="question-answer"' not in page
        assert len(list(_ROW.finditer(page))) == 6


async def test_what_is_not_a_filter_becomes_a_message(
    live_server: LiveServer, database: Database
) -> None:
    history, other_id = await seeded(database, LocalMiniLM())
    admin = await member(database, other_id, Role.ADMIN)
    with signed_in(live_server.url, admin) as browser:
        page = browser.get(f"{PAGE}?assistant_id={history.assistant_a}&to=nope&channel=fax")
        assert page.status_code == 200
        assert "That assistant is not one of yours" in page.text
        assert "Dates are like 2026-03-31." in page.text
        assert [int(m["count"]) for m in _ROW.finditer(page.text)] == [1]
