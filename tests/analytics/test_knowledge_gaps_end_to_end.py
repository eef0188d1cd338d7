"""A knowledge gap from a real conversation: a customer asks the WhatsApp shop of
``tests/support/whatsapp.py`` something its knowledge base does not answer, the assistant
gives its fallback, and the collection job's work makes it a gap, listed by the API with
the conversation behind it; a question the knowledge base answers is no gap, and both
are top questions."""

from __future__ import annotations

from datetime import UTC, datetime

from cybergine.analytics import gaps
from cybergine.knowledge.embeddings import LocalMiniLM
from tests.support.whatsapp import Shop


async def test_a_fallback_on_whatsapp_becomes_a_knowledge_gap(shop: Shop) -> None:
    shop.says("What is your return policy?")
    await shop.work()
    shop.says("Do you deliver to Antarctica by submarine?")
    await shop.work()
    [conversation] = shop.conversations()
    messages = shop.messages(conversation["id"])
    answers = [m for m in messages if m["direction"] == "outbound"]
    assert [a["grounded"] for a in answers] == [True, False]

    async with shop.database.transaction() as session:
        found = await gaps.collect(session, shop.organisation_id, LocalMiniLM(), datetime.now(UTC))
    assert (found.added, found.done) == (2, True)  # the answered question is a top one
    today = datetime.now(UTC).date().isoformat()
    body = shop.api.get(
        "/api/v1/analytics/knowledge-gaps", params={"from": today, "to": today}
    ).json()
    [group] = body["groups"]
    assert group["representative"] == "Do you deliver to Antarctica by submarine?"
    assert (group["questions"], group["fallbacks"]) == (1, 1)
    assert [e["conversation_id"] for e in group["examples"]] == [conversation["id"]]
    listed = shop.api.get(group["conversations_url"]).json()["items"]
    assert [c["id"] for c in listed] == [conversation["id"]]

    top = shop.api.get(
        "/api/v1/analytics/top-questions", params={"from": today, "to": today}
    ).json()
    assert top["questions"] == 2
    by_question = {g["representative"]: g for g in top["groups"]}
    assert by_question["What is your return policy?"]["grounded"] == 1
    assert by_question["Do you deliver to Antarctica by submarine?"]["fallbacks"] == 1
