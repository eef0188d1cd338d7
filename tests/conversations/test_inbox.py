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
from sqlalchemy import select, update

from cybergine.accounts.models import Role
from cybergine.assistants.models import DEFAULT_AI_DISCLOSURE
from cybergine.conversations.handback import assistant_back_notice
from cybergine.conversations.inbox import JOIN_NOTICE
from cybergine.conversations.models import Conversation, Direction, Message, Sender
from cybergine.privacy.audit import AuditEvent
from tests.support.factories import make_organisation
from tests.support.inbox import act, has_testid, member, rows, signed_in, thread
from tests.support.whatsapp import SHIPPING_QA, Shop

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


async def _messages(shop: Shop, conversation_id: str) -> list[Message]:
    async with shop.database.transaction() as session:
        result = await session.execute(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.created_at, Message.id)
        )
        return list(result.scalars())


async def _audit_actions(shop: Shop) -> list[AuditEvent]:
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


def shop_url(shop: Shop) -> str:
    return str(shop.api.base_url).rstrip("/")


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

    [taken_over] = await _audit_actions(shop)
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
    [taken_over] = await _audit_actions(shop)
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

        before = len(await _messages(shop, ada["id"]))
        for blank in ("   ", "\u200b\u200b", "\n\u00a0\ufeff"):
            empty = act(browser, ada["id"], "reply", {"text": blank})
            assert empty.status_code == 422
            # Said next to the field, which keeps what was typed.
            assert '<p class="error" role="alert" id="reply-error">Write your reply first.' in (
                empty.text
            )
            assert 'aria-invalid="true" aria-describedby="reply-error"' in empty.text
        assert len(await _messages(shop, ada["id"])) == before


async def test_a_reply_refused_by_the_closed_window_keeps_the_text(shop: Shop) -> None:
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("I want to talk to a person", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)
    before = len(await _messages(shop, ada["id"]))
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
    assert len(await _messages(shop, ada["id"])) == before  # nothing queued
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
    [stored] = [m for m in await _messages(shop, ada["id"]) if m.direction == Direction.INTERNAL]
    assert stored.sender == Sender.AGENT
    assert stored.type == "note"
    assert stored.author_user_id == agent.id
    assert stored.status.value == "received"
    assert conversation_of(shop, ADA)["state"] == "bot"  # a note is no takeover


# --- Assigning, handing back, closing -------------------------------------------------


async def test_assigning_to_members_who_may_reply(shop: Shop) -> None:
    owner = await member(shop.database, shop.organisation_id, Role.OWNER)
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    viewer = await member(shop.database, shop.organisation_id, Role.VIEWER)
    shop.says("I want to talk to a person", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)

    with signed_in(shop_url(shop), owner) as browser:
        page = browser.get(f"/inbox/{ada['id']}").text
        select = page.split('data-testid="assign-to"', 1)[1].split("</select>", 1)[0]
        assert f'value="{agent.id}"' in select
        assert f'value="{owner.id}"' in select
        assert f'value="{viewer.id}"' not in select

        assigned = act(browser, ada["id"], "assign", {"user_id": str(agent.id)})
        assert assigned.status_code == 303
        assert assigned.headers["location"] == f"/inbox/{ada['id']}?notice=assigned"
        assert conversation_of(shop, ADA)["assigned_user_id"] == str(agent.id)
        assert "Assigned to Agent Person" in browser.get(f"/inbox/{ada['id']}").text

        refused = act(browser, ada["id"], "assign", {"user_id": str(viewer.id)})
        assert refused.status_code == 422
        assert "may reply" in refused.text
        _, stranger = await make_organisation(shop.database, name="Elsewhere")
        assert act(browser, ada["id"], "assign", {"user_id": str(stranger.id)}).status_code == 422
        assert act(browser, ada["id"], "assign", {"user_id": "nobody"}).status_code == 422
        assert conversation_of(shop, ADA)["assigned_user_id"] == str(agent.id)

        assert act(browser, ada["id"], "assign", {"user_id": ""}).status_code == 303
        assert conversation_of(shop, ADA)["assigned_user_id"] is None

    actions = [(e.action, e.details) for e in await _audit_actions(shop)]
    assert actions == [
        ("conversation.assigned", {"from": None, "to": str(agent.id)}),
        ("conversation.assigned", {"from": str(agent.id), "to": None}),
    ]


async def test_handing_back_lets_the_assistant_answer_again(shop: Shop) -> None:
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("I want to talk to a person", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)

    with signed_in(shop_url(shop), agent) as browser:
        assert act(browser, ada["id"], "take-over").status_code == 303
        shop.says("How long does shipping take?", wa_id=ADA)
        await shop.work()
        silent = len(shop.sent_to(ADA))
        # The question waits: the hand-back form asks who answers it.
        page = browser.get(f"/inbox/{ada['id']}").text
        assert has_testid(page, "waiting-message")
        assert "Let the assistant answer the waiting message" in page

        response = act(browser, ada["id"], "hand-back")
        assert response.status_code == 303
        assert response.headers["location"] == f"/inbox/{ada['id']}?notice=handed-back"
        assert conversation_of(shop, ADA)["state"] == "bot"
        await shop.work()
        # The customer is told, then the question that waited is answered (the default).
        assert shop.sent_to(ADA)[silent:-1] == [ASSISTANT_BACK_NOTICE]
        assert SHIPPING_QA["answer"] in shop.sent_to(ADA)[-1]
        assert not has_testid(browser.get(f"/inbox/{ada['id']}").text, "waiting-message")

        shop.says("How long does shipping take?", wa_id=ADA)
        await shop.work()
        assert len(shop.sent_to(ADA)) == silent + 3
        assert SHIPPING_QA["answer"] in shop.sent_to(ADA)[-1]

    events = await _audit_actions(shop)
    assert [e.action for e in events] == ["conversation.taken_over", "conversation.handed_back"]
    assert events[1].details == {
        "from": "human",
        "waiting_message": "assistant_answers",
        "customer_notified": True,
    }


async def test_a_waiting_message_the_person_dealt_with_is_left_to_them(shop: Shop) -> None:
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("I want to talk to a person", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)

    with signed_in(shop_url(shop), agent) as browser:
        assert act(browser, ada["id"], "take-over").status_code == 303
        shop.says("How long does shipping take?", wa_id=ADA)
        await shop.work()
        silent = len(shop.sent_to(ADA))

        refused = act(browser, ada["id"], "hand-back", {"waiting_message": "nobody"})
        assert refused.status_code == 422
        assert conversation_of(shop, ADA)["state"] == "human"

        response = act(browser, ada["id"], "hand-back", {"waiting_message": "dealt_with"})
        assert response.status_code == 303
        await shop.work()
        # Told the assistant is back; the question is the person's, not the assistant's.
        assert shop.sent_to(ADA)[silent:] == [ASSISTANT_BACK_NOTICE]
        shown = thread(browser.get(f"/inbox/{ada['id']}").text)
        assert shown[-1].direction == "internal"
        assert "dealt with" in shown[-1].text

        # Later messages are the assistant's again.
        shop.says("How long does shipping take?", wa_id=ADA)
        await shop.work()
        assert len(shop.sent_to(ADA)) == silent + 2
        assert SHIPPING_QA["answer"] in shop.sent_to(ADA)[-1]

    handed_back = (await _audit_actions(shop))[-1]
    assert handed_back.details is not None
    assert handed_back.details["waiting_message"] == "dealt_with"


async def test_a_reply_queued_before_a_person_answered_stays_unsent(shop: Shop) -> None:
    """The customer's question was still in the queue when a person took over and answered
    it; after the hand-back the assistant must not answer it a second time."""
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("How long does shipping take?", wa_id=ADA)
    ada = conversation_of(shop, ADA)  # its reply job not run yet

    with signed_in(shop_url(shop), agent) as browser:
        assert act(browser, ada["id"], "reply", {"text": "Two to five days."}).status_code == 303
        page = browser.get(f"/inbox/{ada['id']}").text
        assert not has_testid(page, "waiting-message")  # the person answered it
        assert act(browser, ada["id"], "hand-back").status_code == 303
        await shop.work()

    sent = shop.sent_to(ADA)
    assert sent == ["Two to five days.", ASSISTANT_BACK_NOTICE]
    assert not any(SHIPPING_QA["answer"] in text for text in sent)


async def test_a_reply_queued_before_a_person_dealt_with_it_stays_unsent(shop: Shop) -> None:
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("How long does shipping take?", wa_id=BEN)
    ben = conversation_of(shop, BEN)  # its reply job not run yet

    with signed_in(shop_url(shop), agent) as browser:
        assert act(browser, ben["id"], "take-over").status_code == 303
        assert has_testid(browser.get(f"/inbox/{ben['id']}").text, "waiting-message")
        dealt_with = {"waiting_message": "dealt_with"}
        assert act(browser, ben["id"], "hand-back", dealt_with).status_code == 303
        await shop.work()

    assert shop.sent_to(BEN) == [JOIN_NOTICE, ASSISTANT_BACK_NOTICE]


async def test_after_the_service_window_the_customer_is_not_written_to(shop: Shop) -> None:
    """WhatsApp refuses free-form messages 24 hours after the customer's last one: the
    notice is not sent then (the audit says so)."""
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("I want to talk to a person", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)
    with signed_in(shop_url(shop), agent) as browser:
        assert act(browser, ada["id"], "take-over").status_code == 303
        await shop.work()
        async with shop.database.transaction() as session:
            await session.execute(
                update(Conversation)
                .where(Conversation.id == ada["id"])
                .values(last_inbound_at=datetime.now(UTC) - timedelta(hours=25))
            )
        before = len(shop.sent_to(ADA))
        assert act(browser, ada["id"], "hand-back").status_code == 303
        await shop.work()
    assert len(shop.sent_to(ADA)) == before
    handed_back = (await _audit_actions(shop))[-1]
    assert handed_back.details is not None
    assert handed_back.details["customer_notified"] is False
    # Not told on hand-back, so the assistant's next answer discloses it again.
    shop.says("How long does shipping take?", wa_id=ADA)
    await shop.work()
    assert shop.sent_to(ADA)[-1].startswith(DEFAULT_AI_DISCLOSURE)
    assert SHIPPING_QA["answer"] in shop.sent_to(ADA)[-1]


async def test_the_hand_back_gives_the_assistant_s_own_disclosure_again(shop: Shop) -> None:
    disclosure = "Mia is a chatbot: ask for a person at any time."
    changed = shop.api.patch(
        f"/api/v1/assistants/{shop.assistant_id}", json={"ai_disclosure": disclosure}
    )
    assert changed.status_code == 200, changed.text
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("I want to talk to a person", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)
    with signed_in(shop_url(shop), agent) as browser:
        assert act(browser, ada["id"], "take-over").status_code == 303
        await shop.work()
        before = len(shop.sent_to(ADA))
        assert act(browser, ada["id"], "hand-back").status_code == 303
        await shop.work()
    assert shop.sent_to(ADA)[before:] == [assistant_back_notice(disclosure)]
    assert shop.sent_to(ADA)[-1].endswith(disclosure)


async def test_closing_makes_the_next_message_a_new_conversation(shop: Shop) -> None:
    agent = await member(shop.database, shop.organisation_id, Role.AGENT)
    shop.says("I want to talk to a person", wa_id=ADA)
    await shop.work()
    ada = conversation_of(shop, ADA)

    with signed_in(shop_url(shop), agent) as browser:
        response = act(browser, ada["id"], "close")
        assert response.status_code == 303
        assert response.headers["location"] == f"/inbox/{ada['id']}?notice=closed"
        closed = conversation_of(shop, ADA, state="closed")
        assert closed["closed_at"] is not None

        page = browser.get(f"/inbox/{ada['id']}").text
        for testid in ("take-over", "reply-text", "hand-back", "close-conversation"):
            assert not has_testid(page, testid), testid
        refused = act(browser, ada["id"], "take-over")
        assert refused.status_code == 409
        assert "closed" in refused.text
        assert act(browser, ada["id"], "hand-back").status_code == 409
        assert act(browser, ada["id"], "reply", {"text": "Hello?"}).status_code == 409

        shop.says("What is your return policy?", wa_id=ADA)
        await shop.work()
        fresh = conversation_of(shop, ADA)
        assert fresh["id"] != ada["id"]
        assert fresh["state"] == "bot"
        assert {r.id for r in rows(browser.get("/inbox").text)} == {fresh["id"]}

    assert [e.action for e in await _audit_actions(shop)] == ["conversation.closed"]


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
    assert all(m.sender != Sender.AGENT for m in await _messages(shop, ada["id"]))


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
