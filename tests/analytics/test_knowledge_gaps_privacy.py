"""Knowledge gaps send less to the embeddings endpoint (policy §7, §8, §13, §14): a
question is redacted as the retrieval query is before it is embedded, and nothing of a
customer whose processing is restricted, who objected, opted out or was erased is
collected or embedded. The endpoint is the OpenAI-compatible simulator over real HTTP,
which records what it received; an organisation that is closing embeds nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from cybergine.accounts.models import Organisation, OrganisationStatus
from cybergine.analytics import gaps
from cybergine.analytics.gap_models import GapQuestion
from cybergine.assistants.models import Assistant
from cybergine.conversations.models import ERASED_PREFIX, Conversation, Customer
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.embeddings import OpenAICompatibleEmbeddings
from cybergine.knowledge.models import EMBEDDING_DIMENSIONS
from tests.analytics.gap_history import ask
from tests.support.conversations import make_conversation, make_customer
from tests.support.factories import make_organisation
from tests.support.openai_simulator import OpenAISimulator

EMBEDDINGS = "/v1/embeddings"
EMAIL = "ada.lovelace@example.com"
PHONE = "+44 20 7946 0958"
QUESTION = f"Do you ship to Canada? Write to {EMAIL} or call {PHONE}"


@pytest.fixture
def llm() -> Iterator[OpenAISimulator]:
    with OpenAISimulator() as simulator:
        yield simulator


@dataclass
class Shop:
    organisation_id: uuid.UUID
    database: Database
    embeddings: OpenAICompatibleEmbeddings
    llm: OpenAISimulator

    async def asks(self, question: str, *, redact: bool = True, **customer: Any) -> uuid.UUID:
        """A customer's question that got the fallback, in a conversation with an
        assistant that redacts (or not); the question's message id."""
        async with self.database.transaction() as session:
            assistant = TenantScope(session, self.organisation_id).add(
                Assistant(name=f"Mia {uuid.uuid4().hex[:8]}", redact_personal_data=redact)
            )
            await session.flush()
            who = await make_customer(session, self.organisation_id, **customer)
            conversation = await make_conversation(
                session, self.organisation_id, customer=who, assistant_id=assistant.id
            )
            asked = await ask(
                session, conversation, datetime.now(UTC) - timedelta(hours=1), question
            )
            return asked.id

    async def collect(self) -> int:
        async with self.database.transaction() as session:
            found = await gaps.collect(
                session, self.organisation_id, self.embeddings, datetime.now(UTC)
            )
        return found.added

    def sent(self) -> list[str]:
        return [json.dumps(r.body, ensure_ascii=False) for r in self.llm.received(EMBEDDINGS)]

    async def collected(self) -> set[uuid.UUID]:
        async with self.database.transaction() as session:
            return set(
                await session.scalars(
                    select(GapQuestion.message_id).where(
                        GapQuestion.organisation_id == self.organisation_id
                    )
                )
            )


@pytest.fixture
async def shop(database: Database, llm: OpenAISimulator) -> Shop:
    organisation, _ = await make_organisation(database, name="Gaps")
    embeddings = OpenAICompatibleEmbeddings(
        base_url=llm.base_url,
        api_key=llm.api_key,
        model="text-embedding-3-small",
        dimensions=EMBEDDING_DIMENSIONS,
    )
    return Shop(organisation.id, database, embeddings, llm)


async def test_a_question_is_redacted_before_it_is_embedded(shop: Shop) -> None:
    asked = await shop.asks(QUESTION)
    assert await shop.collect() == 1
    assert await shop.collected() == {asked}
    [sent] = shop.sent()
    assert EMAIL not in sent
    assert "7946 0958" not in sent
    assert "Do you ship to Canada?" in sent
    assert "[email 1]" in sent
    assert "[phone 1]" in sent


async def test_an_assistant_that_does_not_redact_has_the_question_embedded_as_written(
    shop: Shop,
) -> None:
    """Redaction follows the assistant's setting, as the retrieval query's does."""
    await shop.asks(QUESTION, redact=False)
    assert await shop.collect() == 1
    [sent] = shop.sent()
    assert EMAIL in sent


@pytest.mark.parametrize(
    "customer",
    [
        {"processing_restricted_at": datetime(2026, 1, 1, tzinfo=UTC)},
        {"objected_at": datetime(2026, 1, 1, tzinfo=UTC)},
        {"opted_out_at": datetime(2026, 1, 1, tzinfo=UTC), "opt_out_source": "keyword"},
        {"external_id": f"{ERASED_PREFIX}{uuid.uuid4()}", "phone_number": None},
    ],
    ids=["restricted", "objecting", "opted_out", "erased"],
)
async def test_nothing_of_a_customer_who_limited_processing_is_collected_or_embedded(
    shop: Shop, customer: dict[str, Any]
) -> None:
    kept = await shop.asks("Do you sell gift cards?")
    await shop.asks("Is delivery to Toronto possible?", **customer)
    assert await shop.collect() == 1
    assert await shop.collected() == {kept}
    sent = shop.sent()
    assert sent
    assert all("Toronto" not in body for body in sent)
    assert any("gift cards" in body for body in sent)


async def test_a_closing_organisation_embeds_nothing_until_it_is_active_again(
    shop: Shop,
) -> None:
    asked = await shop.asks("Do you sell gift cards?")
    async with shop.database.transaction() as session:
        await session.execute(
            update(Organisation)
            .where(Organisation.id == shop.organisation_id)
            .values(status=OrganisationStatus.SHOP_UNINSTALLED)
        )
        assert shop.organisation_id not in await gaps.stale_organisations(session)
    assert await shop.collect() == 0
    assert shop.sent() == []
    async with shop.database.transaction() as session:
        await session.execute(
            update(Organisation)
            .where(Organisation.id == shop.organisation_id)
            .values(status=OrganisationStatus.ACTIVE)
        )
        assert shop.organisation_id in await gaps.stale_organisations(session)
    assert await shop.collect() == 1
    assert await shop.collected() == {asked}


async def test_a_customer_restricted_after_asking_is_left_out_of_the_next_collection(
    shop: Shop,
) -> None:
    asked = await shop.asks("Do you sell gift cards?")
    async with shop.database.transaction() as session:
        conversation = await session.scalar(
            select(Conversation)
            .join(Customer)
            .where(Customer.organisation_id == shop.organisation_id)
        )
        assert conversation is not None
        await session.execute(
            update(Customer)
            .where(Customer.id == conversation.customer_id)
            .values(processing_restricted_at=func.now())
        )
    assert await shop.collect() == 0
    assert shop.sent() == []
    assert asked not in await shop.collected()
