"""A customer's satisfaction rating is theirs (policy §14): their export shows it, their
erasure deletes it, and the analytics aggregates then count the survey as sent with no
answer, naming no one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from cybergine.accounts.models import Role
from cybergine.accounts.principal import Principal
from cybergine.analytics import rollups
from cybergine.analytics.models import HourlyFigures
from cybergine.assistants.models import Assistant
from cybergine.conversations import csat, inbox
from cybergine.conversations.csat_models import CsatSurvey
from cybergine.conversations.models import Channel
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.privacy.erasure import erase_customer
from cybergine.privacy.export import export_customer
from tests.support.conversations import make_conversation, make_customer
from tests.support.factories import make_organisation


async def _counted(database: Database, organisation_id: object) -> tuple[int, int]:
    async with database.transaction() as session:
        await rollups.refresh(
            session,
            organisation_id,  # type: ignore[arg-type]
            rollups.Measure(now=datetime.now(UTC), idle=timedelta(hours=24)),
        )
        row = (
            await session.execute(
                select(
                    func.coalesce(func.sum(HourlyFigures.csat_surveys_sent), 0),
                    func.coalesce(func.sum(HourlyFigures.csat_responses), 0),
                ).where(HourlyFigures.organisation_id == organisation_id)
            )
        ).one()
    return int(row[0]), int(row[1])


async def test_a_rating_is_exported_then_erased(database: Database) -> None:
    organisation, owner = await make_organisation(database)
    async with database.transaction() as session:
        scope = TenantScope(session, organisation.id)
        assistant = scope.add(Assistant(name="Mia"))
        await session.flush()
        customer = await make_customer(session, organisation.id, channel=Channel.WEBCHAT)
        conversation = await make_conversation(
            session, organisation.id, customer=customer, assistant_id=assistant.id
        )
        await inbox.close(
            scope, Principal(organisation.id, Role.OWNER, user_id=owner.id), conversation.id
        )
        survey = (await session.execute(select(CsatSurvey))).scalar_one()
        await csat.record_rating(session, organisation.id, customer.id, survey.id, 2)
    assert await _counted(database, organisation.id) == (1, 1)

    async with database.transaction() as session:
        exported = await export_customer(TenantScope(session, organisation.id), None, customer.id)
    [rating] = exported["satisfaction_ratings"]
    assert (rating["id"], rating["conversation_id"], rating["rating"]) == (
        str(survey.id),
        str(conversation.id),
        2,
    )

    async with database.transaction() as session:
        await erase_customer(TenantScope(session, organisation.id), None, customer.id)
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(CsatSurvey)) == 0
    # Recounted from what is left: the survey row went with the rating.
    assert await _counted(database, organisation.id) == (0, 0)
