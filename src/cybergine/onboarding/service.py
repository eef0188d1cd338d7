"""The getting-started checklist: five steps from an empty organisation to a team whose
assistant answers customers, each read from what the organisation really has (nothing
is stored for the checklist itself), in one statement.

1. an assistant exists;
2. the knowledge base has something to answer from: a document or Q&A that is ready;
3. the assistant was tried: the Try-it panel leaves one audit event per organisation
   (``record_tried``; test chats themselves are not stored), or an assistant has already
   answered a conversation, which proves the same thing;
4. it is live: a widget that lists at least one site, or a WhatsApp number;
5. the team is invited: more than one member, or an invitation waiting for an answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import ColumnElement, exists, func, or_, select

from cybergine.accounts.models import Invitation, Membership
from cybergine.accounts.principal import Principal
from cybergine.assistants.models import Assistant
from cybergine.channels.whatsapp.models import WhatsAppNumber
from cybergine.conversations.models import Conversation
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.models import Item, ItemStatus
from cybergine.privacy import audit
from cybergine.privacy.audit import AuditEvent

TRIED_ACTION = "assistant.tried"


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    hint: str  # what to do, shown while the step is open
    url: str  # where it is done
    done: bool


@dataclass(frozen=True)
class Checklist:
    steps: list[Step]
    first_assistant_id: uuid.UUID | None
    # Documents and Q&A still queued or being indexed: the Overview says they are being
    # read and refreshes itself until they are ready.
    being_read: int = 0

    @property
    def done(self) -> int:
        return sum(step.done for step in self.steps)

    @property
    def complete(self) -> bool:
        return all(step.done for step in self.steps)

    @property
    def next_step(self) -> Step | None:
        return next((step for step in self.steps if not step.done), None)


def _tried_condition(organisation_id: uuid.UUID) -> ColumnElement[bool]:
    answered = exists().where(
        Conversation.organisation_id == organisation_id,
        Conversation.ai_disclosed_at.is_not(None),
    )
    tried_in_panel = exists().where(
        AuditEvent.organisation_id == organisation_id, AuditEvent.action == TRIED_ACTION
    )
    return or_(answered, tried_in_panel)


async def checklist(scope: TenantScope, *, now: datetime | None = None) -> Checklist:
    organisation_id = scope.organisation_id
    now = now or datetime.now(UTC)
    first_assistant = (
        select(Assistant.id)
        .where(Assistant.organisation_id == organisation_id)
        .order_by(Assistant.created_at, Assistant.id)
        .limit(1)
        .scalar_subquery()
    )
    knowledge_ready = exists().where(
        Item.organisation_id == organisation_id, Item.status == ItemStatus.READY
    )
    being_read = (
        select(func.count())
        .select_from(Item)
        .where(
            Item.organisation_id == organisation_id,
            Item.status.in_((ItemStatus.PENDING, ItemStatus.PROCESSING)),
        )
        .scalar_subquery()
    )
    on_a_site = exists().where(
        Assistant.organisation_id == organisation_id,
        Assistant.active.is_(True),
        func.cardinality(Assistant.allowed_origins) > 0,
    )
    on_whatsapp = exists().where(WhatsAppNumber.organisation_id == organisation_id)
    second_member = exists(
        select(Membership.id).where(Membership.organisation_id == organisation_id).offset(1)
    )
    pending_invitation = exists().where(
        Invitation.organisation_id == organisation_id,
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > now,
    )
    row = (
        await scope.session.execute(
            select(
                first_assistant,
                knowledge_ready,
                _tried_condition(organisation_id),
                or_(on_a_site, on_whatsapp),
                or_(second_member, pending_invitation),
                being_read,
            )
        )
    ).one()
    # Six columns are past SQLAlchemy's typed overloads: the row's types are said here.
    assistant_id = cast("uuid.UUID | None", row[0])
    has_knowledge, tried, live, team = (bool(value) for value in row[1:5])
    reading = cast(int, row[5])
    try_url = f"/assistants/{assistant_id}#try-it" if assistant_id else "/assistants"
    steps = [
        Step(
            "assistant",
            "Create an assistant",
            "Give it a name and a voice; it answers your customers.",
            "/assistants",
            assistant_id is not None,
        ),
        Step(
            "knowledge",
            "Add what it should know",
            "Upload your FAQ, policies or product guides, or write questions and answers.",
            "/knowledge",
            bool(has_knowledge),
        ),
        Step(
            "try",
            "Try it",
            "Ask it a question as a customer would, and see where its answer comes from.",
            try_url,
            bool(tried),
        ),
        Step(
            "live",
            "Put it on your site or connect WhatsApp",
            "Add your shop's address to the chat widget and paste its snippet, "
            "or connect a WhatsApp number.",
            "/channels",
            bool(live),
        ),
        Step(
            "team",
            "Invite your team",
            "Colleagues can answer when a customer asks for a person.",
            "/team",
            bool(team),
        ),
    ]
    return Checklist(steps=steps, first_assistant_id=assistant_id, being_read=reading)


async def record_tried(database: Database, principal: Principal, assistant_id: uuid.UUID) -> None:
    """Remember, for the checklist, that someone tried an assistant in the Try-it panel
    (or its API): one audit event per organisation, so the audit log does not fill up
    with test chats. A transaction of its own, after the answer: the test chat itself
    holds no connection while a model answers."""
    async with database.transaction() as session:
        already = await session.scalar(
            select(
                exists().where(
                    AuditEvent.organisation_id == principal.organisation_id,
                    AuditEvent.action == TRIED_ACTION,
                )
            )
        )
        if already:
            return
        await audit.record(
            session,
            action=TRIED_ACTION,
            actor=principal.actor,
            organisation_id=principal.organisation_id,
            target_type="assistant",
            target_id=str(assistant_id),
        )
