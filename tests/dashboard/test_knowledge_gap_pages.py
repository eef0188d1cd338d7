"""The Knowledge gaps page over real HTTP on the history of ``tests/analytics/gap_history.py``:
the groups with their counts and examples, customers' hostile text shown escaped, and the
one-click "Answer this" that opens the Q&A form pre-filled and, once the pair is written,
marks the group answered."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
from markupsafe import escape
from sqlalchemy import select

from cybergine.accounts.models import Role
from cybergine.analytics.gap_models import GapGroup
from cybergine.conversations.models import Conversation
from cybergine.db.engine import Database
from cybergine.knowledge.embeddings import LocalMiniLM
from cybergine.knowledge.models import Item, ItemKind
from tests.analytics.gap_history import SHIPPING, ask, collect, seeded
from tests.support.inbox import member, rows, signed_in
from tests.support.server import LiveServer

PAGE = "/analytics/knowledge-gaps"
HOSTILE = (
    '<script>alert("gap")</script>',
    '"><img src=x onerror=alert(1)>',
)
_GAP = re.compile(
    r'<article class="panel gap"[^>]*data-gap="(?P<id>[0-9a-f-]+)">\s*'
    r'<h2[^>]*>“(?P<question>.*?)”</h2>.*?data-testid="gap-count">Asked (?P<count>\d+) time'
    r"(?P<rest>.*?)</article>",
    re.DOTALL,
)
_BEHIND = re.compile(r'<a href="(?P<href>[^"]+)" data-testid="gap-conversations">')
_ANSWER = re.compile(r'<a class="button" href="(?P<href>[^"]+)" data-testid="gap-answer"')


@pytest.fixture(scope="module")
def minilm() -> LocalMiniLM:
    return LocalMiniLM()


def _period(first: datetime) -> str:
    return f"{PAGE}?from={first.date().isoformat()}&to={datetime.now(UTC).date().isoformat()}"


async def test_groups_are_listed_and_answer_this_writes_a_pair_that_marks_the_group(
    live_server: LiveServer, database: Database, minilm: LocalMiniLM
) -> None:
    history, _ = await seeded(database, minilm)
    admin = await member(database, history.organisation_id, Role.ADMIN)
    with signed_in(live_server.url, admin) as browser:
        page = browser.get(_period(history.first))
        assert page.status_code == 200, page.text
        assert 'aria-current="page">Knowledge gaps</a>' in page.text
        groups = list(_GAP.finditer(page.text))
        assert [int(g["count"]) for g in groups] == [5, 3]
        shipping = groups[0]
        assert html.unescape(shipping["question"]) in SHIPPING
        for question in SHIPPING:
            assert str(escape(question)) in shipping["rest"]
        for conversation_id in history.shipping_conversations:
            assert f'href="/inbox/{conversation_id}"' in shipping["rest"]
        # The conversations behind it, in the inbox: exactly those.
        behind = _BEHIND.search(shipping["rest"])
        assert behind is not None
        inbox = browser.get(html.unescape(behind["href"]))
        assert inbox.status_code == 200
        assert "Conversations behind <strong>a knowledge gap&#39;s questions</strong>" in inbox.text
        assert "Back to knowledge gaps" in inbox.text
        assert {row.id for row in rows(inbox.text)} == {
            str(c) for c in history.shipping_conversations
        }

        answer = _ANSWER.search(shipping["rest"])
        assert answer is not None
        form = browser.get(html.unescape(answer["href"]))
        assert form.status_code == 200
        assert f'value="{shipping["question"]}"' in form.text
        assert f'<input type="hidden" name="gap" value="{shipping["id"]}">' in form.text
        assert 'data-testid="qa-from-gap"' in form.text

        written = browser.post(
            "/knowledge/qa",
            {
                "question": html.unescape(shipping["question"]),
                "alternatives": "",
                "answer": "Yes, we ship to Canada in 5 to 8 days.",
                "collection": "default",
                "gap": shipping["id"],
            },
            csrf_from="/knowledge/qa",
        )
        assert written.status_code == 303, written.text
        async with database.transaction() as session:
            pair = await session.scalar(select(Item).where(Item.kind == ItemKind.QA))
            group = await session.get(GapGroup, shipping["id"])
        assert pair is not None
        assert group is not None
        assert group.answer_item_id == pair.id
        assert group.answered_at is not None

        # Answered: after the open groups, marked, and counting what is still asked since.
        async with database.transaction() as session:
            conversation = await session.get(
                Conversation, next(iter(history.shipping_conversations))
            )
            assert conversation is not None
            await ask(session, conversation, datetime.now(UTC), "Do you ship to Canada?")
        await collect(database, history.organisation_id, minilm)
        page = browser.get(_period(history.first))
        groups = list(_GAP.finditer(page.text))
        assert [(g["id"], int(g["count"])) for g in groups][-1] == (shipping["id"], 6)
        assert 'data-testid="gap-answered"' in groups[-1]["rest"]
        assert "Still asked 1 time since" in groups[-1]["rest"]
        assert 'data-testid="gap-answered"' not in groups[0]["rest"]


async def test_customers_text_is_shown_escaped(
    live_server: LiveServer, database: Database, minilm: LocalMiniLM
) -> None:
    history, _ = await seeded(database, minilm)
    async with database.transaction() as session:
        conversation = await session.scalar(
            select(Conversation).where(Conversation.organisation_id == history.organisation_id)
        )
        assert conversation is not None
        for text in HOSTILE:
            await ask(session, conversation, datetime.now(UTC), text)
    await collect(database, history.organisation_id, minilm)
    admin = await member(database, history.organisation_id, Role.ADMIN)
    with signed_in(live_server.url, admin) as browser:
        page = browser.get(_period(history.first)).text
        for text in HOSTILE:
            assert text not in page
            assert str(escape(text)) in page
        assert "<img src=x" not in page
        assert "<script>alert" not in page
        hrefs = [html.unescape(m["href"]) for m in _ANSWER.finditer(page)]
        hostile = [h for h in hrefs if "alert" in h]
        assert hostile
        for href in hostile:
            form = browser.get(href).text
            assert "<script>alert" not in form
            assert "<img src=x" not in form


async def test_a_viewer_reads_the_gaps_but_is_not_offered_to_answer(
    live_server: LiveServer, database: Database, minilm: LocalMiniLM
) -> None:
    history, _ = await seeded(database, minilm)
    viewer = await member(database, history.organisation_id, Role.VIEWER)
    with signed_in(live_server.url, viewer) as browser:
        page = browser.get(_period(history.first))
        assert page.status_code == 200
        assert [int(g["count"]) for g in _GAP.finditer(page.text)] == [5, 3]
        assert 'data-testid="gap-answer"' not in page.text


async def test_what_is_not_a_filter_becomes_a_message(
    live_server: LiveServer, database: Database, minilm: LocalMiniLM
) -> None:
    history, other_id = await seeded(database, minilm)
    admin = await member(database, other_id, Role.ADMIN)
    with signed_in(live_server.url, admin) as browser:
        # Another organisation's assistant is not one of theirs: all of theirs are shown.
        page = browser.get(f"{PAGE}?assistant_id={history.assistant_a}&from=nope&timezone=Mars")
        assert page.status_code == 200
        assert "That assistant is not one of yours" in page.text
        assert "is not a time zone we know" in page.text
        assert "Dates are like 2026-03-31." in page.text
        assert [int(g["count"]) for g in _GAP.finditer(page.text)] == [1]
