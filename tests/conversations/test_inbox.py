"""The agent inbox, end to end: customers write through WhatsApp webhooks (the Graph API
simulator plays Meta), people on the team work in the dashboard over real HTTP, and what
reaches the customer is read back at the simulator (policy §7: human oversight and the
right to human review)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from cybergine.accounts.models import Role
from cybergine.conversations.inbox import JOIN_NOTICE
from cybergine.conversations.models import Conversation, Direction, Sender
from tests.support.factories import make_organisation
from tests.support.inbox import (
    ACTIONS,
    ADA,
    BEN,
    CLEO,
    DAN,
    act,
    audit_actions,
    conversation_of,
    has_testid,
    member,
    messages_of,
    rows,
    shop_url,
    signed_in,
    thread,
)
from tests.support.whatsapp import Shop

# --- The list -------------------------------------------------------------------------


async def test_human_review_comes_first_then_waiting_then_last_activity(shop: Shop) -> None:
    owner = await member(shop.database, shop.organisation_id, Role.OWNER)
    shop.says("What is your return policy?", wa_id=ADA)
    shop.says("I want to talk to a person", wa_id=BEN)
    shop.says("I want a human to review this decision", wa_id=CLEO)
    shop.says("How long does shipping take?", wa_id=DAN)
    await shop.work()
    ada, ben, cleo, dan = (conversation_of(shop, w) for w in (ADA, BEN, CLEO, DAN))
    assert (ben["state"], cleo["state"]) == ("waiting_for_human", "waiting_for_human")
    assert cleo["human_review_requested"] is True

    with signed_in(shop_url(shop), owner) as browser:
        page = browser.get("/inbox")
        assert page.status_code == 200
        listed = rows(page.text)
        assert [r.id for r in listed[:2]] == [cleo["id"], ben["id"]]
        assert [r.review for r in listed[:2]] == [True, False]
        rest = sorted((ada, dan), key=lambda c: c["last_message_at"], reverse=True)
        assert [r.id for r in listed[2:]] == [c["id"] for c in rest]
        assert all(r.unread == 1 for r in listed)
        assert "Human review requested" in page.text
        assert "Mia" in page.text  # the assistant
        assert "Ada (+15550001111)" in page.text

        review = browser.get(f"/inbox/{cleo['id']}").text
        assert has_testid(review, "human-review")
        assert "The customer asked for a person to review an automated decision." in review
        waiting = browser.get(f"/inbox/{ben['id']}").text
        assert not has_testid(waiting, "human-review")
        assert "The customer asked for a person." in waiting

        # New activity moves a conversation up among its peers, never above the waiting.
        shop.says("And do you ship to Norway?", wa_id=ADA)
        await shop.work()
        listed = rows(browser.get("/inbox/list").text)
        assert [r.id for r in listed[:3]] == [cleo["id"], ben["id"], ada["id"]]
        assert listed[2].unread == 2
        # The preview: the last message the customer saw, and who wrote it.
        assert 'data-testid="inbox-preview">Assistant: ' in page.text


async def test_filters_by_state_assignee_and_channel(shop: Shop) -> None:
    owner = await member(shop.database, shop.organisation_id, Role.OWNER)
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("What is your return policy?", wa_id=ADA)
    shop.says("I want to talk to a person", wa_id=BEN)
    await shop.work()
    ada, ben = conversation_of(shop, ADA), conversation_of(shop, BEN)

    with signed_in(shop_url(shop), owner) as browser:

        def listed(query: str) -> set[str]:
            page = browser.get(f"/inbox?{query}")
            assert page.status_code == 200, page.text
            return {r.id for r in rows(page.text)}

        assert listed("") == {ada["id"], ben["id"]}
        assert listed("state=waiting_for_human") == {ben["id"]}
        assert listed("state=bot") == {ada["id"]}
        assert listed("state=human") == set()
        assert listed("state=closed") == set()
        assert listed("channel=whatsapp") == {ada["id"], ben["id"]}
        assert listed("channel=webchat") == set()
        assert listed("assignee=me") == set()
        assert listed("assignee=unassigned") == {ada["id"], ben["id"]}

        assert act(browser, ben["id"], "take-over").status_code == 303
        assert act(browser, ada["id"], "assign", {"user_id": str(agent.id)}).status_code == 303
        assert listed("assignee=me") == {ben["id"]}
        assert listed(f"assignee={agent.id}") == {ada["id"]}
        assert listed("assignee=unassigned") == set()
        assert listed("state=human&assignee=me") == {ben["id"]}

        assert act(browser, ada["id"], "close").status_code == 303
        assert listed("") == {ben["id"]}  # all open
        assert listed("state=closed") == {ada["id"]}
        assert listed("state=all") == {ada["id"], ben["id"]}

        for bad in ("state=deleted", "channel=fax", "assignee=someone"):
            assert browser.get(f"/inbox?{bad}").status_code == 422


async def test_the_list_pages_through_many_conversations(shop: Shop) -> None:
    owner = await member(shop.database, shop.organisation_id, Role.OWNER)
    wa_ids = [f"1555000{n:04d}" for n in range(53)]
    for wa_id in wa_ids:
        shop.says("Hello there", wa_id=wa_id)
    with signed_in(shop_url(shop), owner) as browser:
        first = browser.get("/inbox")
        assert len(rows(first.text)) == 50
        more = _attribute(first.text, 'data-testid="inbox-more"', "href")
        second = browser.get(more)
        assert second.status_code == 200
        seen = [r.id for r in rows(first.text)] + [r.id for r in rows(second.text)]
        assert len(seen) == len(set(seen)) == 53
        assert 'data-testid="inbox-more"' not in second.text
        assert browser.get("/inbox?cursor=not-a-cursor").status_code == 422


def _attribute(page: str, marker: str, name: str) -> str:
    start = page.rindex("<", 0, page.index(marker))
    tag = page[start : page.index(">", start)]
    value = tag.split(f'{name}="', 1)[1].split('"', 1)[0]
    return value.replace("&amp;", "&")


async def test_opening_a_conversation_marks_it_read_only_for_those_who_reply(
    shop: Shop,
) -> None:
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    viewer = await member(shop.database, shop.organisation_id, Role.VIEWER)
    shop.says("What is your return policy?", wa_id=ADA)
    shop.says("Also: do you have gift cards?", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)
    assert ada["unread_count"] == 2

    with signed_in(shop_url(shop), viewer) as browser:
        assert browser.get(f"/inbox/{ada['id']}").status_code == 200
    assert conversation_of(shop, ADA)["unread_count"] == 2

    with signed_in(shop_url(shop), agent) as browser:
        assert rows(browser.get("/inbox").text)[0].unread == 2
        assert browser.get(f"/inbox/{ada['id']}").status_code == 200
        assert rows(browser.get("/inbox").text)[0].unread == 0
    assert conversation_of(shop, ADA)["unread_count"] == 0


# --- Taking over, replying, notes -----------------------------------------------------


async def test_taking_over_tells_the_customer_and_silences_the_assistant(shop: Shop) -> None:
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("What is your return policy?", wa_id=ADA)
    await shop.work()
    assert len(shop.sent_to(ADA)) == 1  # the assistant answered
    ada = conversation_of(shop, ADA)

    with signed_in(shop_url(shop), agent) as browser:
        page = browser.get(f"/inbox/{ada['id']}")
        assert has_testid(page.text, "take-over")
        response = act(browser, ada["id"], "take-over")
        assert response.status_code == 303
        assert response.headers["location"] == f"/inbox/{ada['id']}?notice=taken-over"
        await shop.work()
        assert shop.sent_to(ADA)[-1] == JOIN_NOTICE
        taken = conversation_of(shop, ADA)
        assert taken["state"] == "human"
        assert taken["assigned_user_id"] == str(agent.id)

        shop.says("Thanks, and how long does shipping take?", wa_id=ADA)
        await shop.work()
        assert len(shop.sent_to(ADA)) == 2  # the assistant stays silent

        page = browser.get(f"/inbox/{ada['id']}?notice=taken-over")
        assert "You took over" in page.text
        assert not has_testid(page.text, "take-over")  # already with a person
        assert has_testid(page.text, "hand-back")
        messages = thread(page.text)
        assert [(m.sender, m.direction) for m in messages] == [
            ("customer", "inbound"),
            ("assistant", "outbound"),
            ("system", "outbound"),
            ("customer", "inbound"),
        ]
        assert messages[2].text == JOIN_NOTICE

        # Taking over again changes nothing and tells the customer nothing more.
        assert act(browser, ada["id"], "take-over").status_code == 303
        await shop.work()
        assert len(shop.sent_to(ADA)) == 2

    [taken_over] = await audit_actions(shop)
    assert taken_over.action == "conversation.taken_over"
    assert taken_over.actor_id == str(agent.id)
    assert taken_over.target_id == ada["id"]
    assert taken_over.details == {
        "from": "bot",
        "assigned_user_id": str(agent.id),
        "customer_notified": True,
    }


async def test_taking_over_after_24_hours_skips_the_notice(shop: Shop) -> None:
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("I want to talk to a person", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)
    sent_before = len(shop.sent_to(ADA))
    async with shop.database.transaction() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == ada["id"])
            .values(last_inbound_at=datetime.now(UTC) - timedelta(hours=25))
        )
    with signed_in(shop_url(shop), agent) as browser:
        assert act(browser, ada["id"], "take-over").status_code == 303
        await shop.work()
    assert len(shop.sent_to(ADA)) == sent_before
    assert conversation_of(shop, ADA)["state"] == "human"
    [taken_over] = await audit_actions(shop)
    assert taken_over.details["customer_notified"] is False
    assert taken_over.details["from"] == "waiting_for_human"


async def test_an_agent_reply_reaches_the_customer(shop: Shop) -> None:
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("I want to talk to a person", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)

    with signed_in(shop_url(shop), agent) as browser:
        text = "Hi Ada, this is Sam.\nI'll check your order now."
        response = act(browser, ada["id"], "reply", {"text": f"  {text}  "})
        assert response.status_code == 303
        assert response.headers["location"] == f"/inbox/{ada['id']}?notice=reply-sent"
        await shop.work()
        assert shop.sent_to(ADA)[-1] == text
        assert conversation_of(shop, ADA)["state"] == "human"

        page = browser.get(f"/inbox/{ada['id']}").text
        reply = thread(page)[-1]
        assert (reply.sender, reply.direction, reply.text) == ("agent", "outbound", text)
        assert reply.status in {"sent", "delivered", "read"}
        assert "Agent Person (team)" in reply.body

        before = len(await messages_of(shop, ada["id"]))
        for blank in ("   ", "\u200b\u200b", "\n\u00a0\ufeff"):
            empty = act(browser, ada["id"], "reply", {"text": blank})
            assert empty.status_code == 422
            # Said next to the field, which keeps what was typed.
            assert '<p class="error" role="alert" id="reply-error">Write your reply first.' in (
                empty.text
            )
            assert 'aria-invalid="true" aria-describedby="reply-error"' in empty.text
        assert len(await messages_of(shop, ada["id"])) == before


async def test_a_reply_refused_by_the_closed_window_keeps_the_text(shop: Shop) -> None:
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("I want to talk to a person", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)
    before = len(await messages_of(shop, ada["id"]))
    async with shop.database.transaction() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == ada["id"])
            .values(last_inbound_at=datetime.now(UTC) - timedelta(hours=25))
        )

    with signed_in(shop_url(shop), agent) as browser:
        page = browser.get(f"/inbox/{ada['id']}")
        assert "more than 24 hours ago" in page.text  # warned before trying
        typed = 'Sorry for the wait — your "order" <is> on its way.'
        refused = act(browser, ada["id"], "reply", {"text": typed})
    assert refused.status_code == 409
    assert "24 hours" in refused.text
    assert "Your text is kept below." in refused.text
    textarea = refused.text.split('data-testid="reply-text"', 1)[1].split("</textarea>", 1)[0]
    assert textarea.split(">", 1)[1] == (
        "Sorry for the wait — your &#34;order&#34; &lt;is&gt; on its way."
    )
    assert len(await messages_of(shop, ada["id"])) == before  # nothing queued
    assert conversation_of(shop, ADA)["state"] == "waiting_for_human"


async def test_a_note_stays_inside_the_team(shop: Shop) -> None:
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("What is your return policy?", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)
    sent = len(shop.graph.sent)

    with signed_in(shop_url(shop), agent) as browser:
        response = act(browser, ada["id"], "notes", {"text": "Customer is a VIP: be generous."})
        assert response.status_code == 303
        assert response.headers["location"] == f"/inbox/{ada['id']}?notice=note-added"
        await shop.work()
        page = browser.get(f"/inbox/{ada['id']}").text
        note = thread(page)[-1]
        assert (note.sender, note.direction) == ("agent", "internal")
        assert note.text == "Customer is a VIP: be generous."
        assert "Note — only your team sees this" in note.body

        for blank in ("  ", "\u200b\u2060"):
            refused = act(browser, ada["id"], "notes", {"text": blank})
            assert refused.status_code == 422
            assert 'id="note-error">Write the note first.' in refused.text
            assert 'aria-invalid="true" aria-describedby="note-error"' in refused.text
        too_long = act(browser, ada["id"], "notes", {"text": "x" * 5001})
        assert too_long.status_code == 422
        assert "at most 5,000 characters" in too_long.text

    assert len(shop.graph.sent) == sent  # never sent
    [stored] = [m for m in await messages_of(shop, ada["id"]) if m.direction == Direction.INTERNAL]
    assert stored.sender == Sender.AGENT
    assert stored.type == "note"
    assert stored.author_user_id == agent.id
    assert stored.status.value == "received"
    assert conversation_of(shop, ADA)["state"] == "bot"  # a note is no takeover


# --- Who may do what ------------------------------------------------------------------


async def test_viewers_read_but_cannot_act(shop: Shop) -> None:
    viewer = await member(shop.database, shop.organisation_id, Role.VIEWER)
    shop.says("I want to talk to a person", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)

    with signed_in(shop_url(shop), viewer) as browser:
        inbox = browser.get("/inbox")
        assert inbox.status_code == 200
        assert [r.id for r in rows(inbox.text)] == [ada["id"]]
        page = browser.get(f"/inbox/{ada['id']}")
        assert page.status_code == 200
        assert len(thread(page.text)) >= 2
        for testid in (*ACTIONS, "hand-back", "close-conversation"):
            assert not has_testid(page.text, testid), testid
        assert "not answer them" in page.text

        token = browser.csrf()
        for action, data in (
            ("take-over", {}),
            ("reply", {"text": "Hello from a viewer"}),
            ("notes", {"text": "A viewer's note"}),
            ("assign", {"user_id": str(viewer.id)}),
            ("hand-back", {}),
            ("close", {}),
        ):
            response = browser.post(f"/inbox/{ada['id']}/{action}", data, csrf=token)
            assert response.status_code == 403, action

    after = conversation_of(shop, ADA)
    assert after["state"] == "waiting_for_human"
    assert after["assigned_user_id"] is None
    assert all(m.sender != Sender.AGENT for m in await messages_of(shop, ada["id"]))


async def test_another_organisations_conversation_is_not_found(shop: Shop) -> None:
    shop.says("I want to talk to a person", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)
    _, outsider = await make_organisation(shop.database, name="Other Shop")

    with signed_in(shop_url(shop), outsider) as browser:
        assert rows(browser.get("/inbox").text) == []
        assert browser.get(f"/inbox/{ada['id']}").status_code == 404
        assert browser.get(f"/inbox/{ada['id']}/thread").status_code == 404
        token = browser.csrf("/inbox")
        for action in ("take-over", "reply", "notes", "assign", "hand-back", "close"):
            response = browser.post(f"/inbox/{ada['id']}/{action}", {"text": "x"}, csrf=token)
            assert response.status_code == 404, action
    assert conversation_of(shop, ADA)["state"] == "waiting_for_human"


# --- Hostile text ---------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(1)>'


async def test_hostile_text_is_shown_as_text(shop: Shop) -> None:
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says(IMAGE, wa_id=ADA)
    # The customer's profile name is theirs to choose too.
    body = shop.graph.inbound_webhook(shop.phone_number_id, ADA, SCRIPT, name=IMAGE)
    assert shop.post(body).status_code == 200
    await shop.work()
    ada = conversation_of(shop, ADA)

    with signed_in(shop_url(shop), agent) as browser:
        assert act(browser, ada["id"], "notes", {"text": f"{SCRIPT} {IMAGE}"}).status_code == 303
        for path in ("/inbox", "/inbox/list", f"/inbox/{ada['id']}", f"/inbox/{ada['id']}/thread"):
            text = browser.get(path).text
            assert "<script>alert" not in text, path
            assert "<img src=x" not in text, path
            assert "&lt;img src=x onerror=alert(1)&gt;" in text, path  # the customer's name
        page = browser.get(f"/inbox/{ada['id']}").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        shown = {m.text for m in thread(page)}
        assert {SCRIPT, IMAGE, f"{SCRIPT} {IMAGE}"} <= shown


# --- Live updates ---------------------------------------------------------------------


def _events(lines: Any, *, seconds: float) -> list[dict[str, Any]]:
    """Read an event stream until its first `conversation` event, or for ``seconds``."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name == "conversation":
            found.append(json.loads(line.removeprefix("data: ")))
            return found
        if time.monotonic() > deadline:
            break
    return found


def _until_quiet(lines: Any) -> list[str]:
    """What a stream says until it stays silent for its client's read timeout."""
    heard: list[str] = []
    try:
        heard.extend(lines)
    except httpx.ReadTimeout:
        return heard
    raise AssertionError("the stream ended")


async def test_the_event_stream_announces_a_customer_message(shop: Shop) -> None:
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    _, outsider = await make_organisation(shop.database, name="Other Shop")
    url = shop_url(shop)
    with signed_in(url, agent) as browser, signed_in(url, outsider) as other:
        stream_headers = {"accept": "text/event-stream"}
        with (
            browser.http.stream("GET", "/inbox/events", headers=stream_headers) as mine,
            other.http.stream(
                "GET", "/inbox/events", headers=stream_headers, timeout=httpx.Timeout(2.0)
            ) as theirs,
        ):
            assert mine.status_code == 200
            assert mine.headers["content-type"].startswith("text/event-stream")
            assert mine.headers["cache-control"] == "no-store"
            lines = mine.iter_lines()
            assert next(lines).startswith("retry: ")
            assert next(lines) == ": connected"
            their_lines = theirs.iter_lines()
            assert next(their_lines).startswith("retry: ")

            started = time.monotonic()
            shop.says("Secret words about my order", wa_id=ADA)
            [event] = _events(lines, seconds=5)
            assert time.monotonic() - started < 5
            ada = conversation_of(shop, ADA)
            assert event == {"id": ada["id"], "kind": "message"}

            # Another organisation hears nothing of it.
            heard = _until_quiet(their_lines)
            assert not [line for line in heard if line.startswith(("event:", "data:"))]

    # Only ids and kinds: never the text.
    assert "Secret words" not in json.dumps(event)


async def test_the_event_stream_needs_a_signed_in_member(shop: Shop) -> None:
    with httpx.Client(base_url=shop_url(shop), timeout=5) as anonymous:
        response = anonymous.get("/inbox/events", headers={"accept": "text/event-stream"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
