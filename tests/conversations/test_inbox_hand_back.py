"""The agent inbox, end to end: assigning a conversation to a member, handing it back to
the assistant (and what becomes of the message waiting), and closing it; customers write
through WhatsApp webhooks (the Graph API simulator plays Meta) and people on the team
work in the dashboard over real HTTP (policy §7: human oversight)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from cybergine.accounts.models import Role
from cybergine.assistants.models import DEFAULT_AI_DISCLOSURE
from cybergine.conversations.handback import assistant_back_notice
from cybergine.conversations.inbox import JOIN_NOTICE
from cybergine.conversations.models import Conversation
from tests.support.factories import make_organisation
from tests.support.inbox import (
    ADA,
    ASSISTANT_BACK_NOTICE,
    BEN,
    act,
    audit_actions,
    conversation_of,
    has_testid,
    member,
    rows,
    shop_url,
    signed_in,
    thread,
)
from tests.support.whatsapp import SHIPPING_QA, Shop

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

    actions = [(e.action, e.details) for e in await audit_actions(shop)]
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

    events = await audit_actions(shop)
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

    handed_back = (await audit_actions(shop))[-1]
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
    handed_back = (await audit_actions(shop))[-1]
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

    assert [e.action for e in await audit_actions(shop)] == ["conversation.closed"]
