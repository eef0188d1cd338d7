"""Helpers for inbox tests: members of the shop signed in through real browsers, the
inbox's pages read the way a test needs them (rows, thread messages), and a shop's
conversations, messages and audit entries as the tests look them up."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from cybergine.accounts.models import Role, User
from cybergine.assistants.models import DEFAULT_AI_DISCLOSURE
from cybergine.conversations.handback import assistant_back_notice
from cybergine.conversations.models import Message
from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, add_member
from tests.support.whatsapp import Shop

_ROW = re.compile(
    r'data-testid="inbox-row" data-state="(?P<state>[a-z_]+)" '
    r'data-conversation-id="(?P<id>[0-9a-f-]+)"\s+data-unread="(?P<unread>\d+)" '
    r'data-review="(?P<review>true|false)"'
)
_MESSAGE = re.compile(
    r'data-testid="thread-message" data-sender="(?P<sender>[a-z]+)" '
    r'data-direction="(?P<direction>[a-z]+)" data-status="(?P<status>[a-z]+)">'
    r"(?P<body>.*?)</li>",
    re.DOTALL,
)
_TEXT = re.compile(r'<p class="msg-text">(.*?)</p>', re.DOTALL)


@contextmanager
def signed_in(url: str, user: User) -> Iterator[Browser]:
    browser = Browser(url)
    try:
        response = browser.sign_in(user.email, PASSWORD)
        assert response.status_code == 303, response.text
        yield browser
    finally:
        browser.close()


async def member(database: Database, organisation_id: uuid.UUID, role: Role) -> User:
    user, _ = await add_member(database, organisation_id, role)
    return user


@dataclass(frozen=True)
class Row:
    id: str
    state: str
    unread: int
    review: bool


def rows(page: str) -> list[Row]:
    """The conversations an inbox page lists, in order."""
    return [
        Row(m["id"], m["state"], int(m["unread"]), m["review"] == "true")
        for m in _ROW.finditer(page)
    ]


@dataclass(frozen=True)
class ThreadMessage:
    sender: str
    direction: str
    status: str
    text: str  # as shown, unescaped
    body: str  # the raw HTML of the message


def thread(page: str) -> list[ThreadMessage]:
    """The messages a conversation page shows, oldest first."""
    found = []
    for m in _MESSAGE.finditer(page):
        text = _TEXT.search(m["body"])
        found.append(
            ThreadMessage(
                sender=m["sender"],
                direction=m["direction"],
                status=m["status"],
                text=html.unescape(text.group(1)) if text else "",
                body=m["body"],
            )
        )
    return found


def act(
    browser: Browser, conversation_id: str, action: str, data: dict[str, str] | None = None
) -> httpx.Response:
    """Post one of the conversation page's forms, with the page's CSRF token."""
    return browser.post(
        f"/inbox/{conversation_id}/{action}", data or {}, csrf_from=f"/inbox/{conversation_id}"
    )


def has_testid(page: str, testid: str) -> bool:
    return f'data-testid="{testid}"' in page


ADA = "15550001111"
BEN = "15550002222"
# Told on hand-back: the assistant is back, and it is automated (policy §7).
ASSISTANT_BACK_NOTICE = assistant_back_notice(DEFAULT_AI_DISCLOSURE)
CLEO = "15550003333"
DAN = "15550004444"

ACTIONS = ("take-over", "reply-text", "reply-send", "note-text", "note-send", "assign-to")


def conversation_of(shop: Shop, wa_id: str, *, state: str | None = None) -> dict[str, Any]:
    found = [
        c
        for c in shop.conversations(limit=200)
        if c["customer"]["phone_number"] == f"+{wa_id}"
        and (state is None or c["state"] == state)
        and (state is not None or c["state"] != "closed")
    ]
    assert len(found) == 1, found
    return found[0]


async def messages_of(shop: Shop, conversation_id: str) -> list[Message]:
    async with shop.database.transaction() as session:
        result = await session.execute(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.created_at, Message.id)
        )
        return list(result.scalars())


async def audit_actions(shop: Shop) -> list[AuditEvent]:
    async with shop.database.transaction() as session:
        result = await session.execute(
            select(AuditEvent)
            .where(
                AuditEvent.organisation_id == shop.organisation_id,
                AuditEvent.action.like("conversation.%"),
            )
            .order_by(AuditEvent.seq)
        )
        return list(result.scalars())


def shop_url(shop: Shop) -> str:
    return str(shop.api.base_url).rstrip("/")
