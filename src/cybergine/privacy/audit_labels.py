"""Who an audit entry's actor is, in words: kept apart from the hash chain, so it can go.

The chain (``privacy.audit``) hashes an actor's type and id only. What a person reads in
the trail ("olive@example.com", an API key's prefix) lives here, one row per actor,
updated when it changes (a new e-mail address) and deleted when the person is erased.
The trail then still verifies, and names no one: the entries keep an id that nothing
resolves any more.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, String, UniqueConstraint, and_, delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base
from cybergine.privacy.retention import Retention

# The audit trail's limits for the same values (``privacy.audit._check``).
MAX_ACTOR_ID = 200
MAX_LABEL = 320


class AuditActorLabel(Base):
    """Not owned by one organisation: a person acts in several. Kept while the actor
    exists (a user's account, an API key), deleted with them."""

    __tablename__ = "audit_actor_labels"
    __retention__ = Retention.ACCOUNT
    __table_args__ = (UniqueConstraint("actor_type", "actor_id"),)

    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(MAX_ACTOR_ID))
    label: Mapped[str] = mapped_column(String(MAX_LABEL))


async def remember(session: AsyncSession, *, actor_type: str, actor_id: str, label: str) -> None:
    """The actor's current label, replacing an older one (a changed e-mail address)."""
    statement = insert(AuditActorLabel).values(
        actor_type=actor_type, actor_id=actor_id, label=label
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[AuditActorLabel.actor_type, AuditActorLabel.actor_id],
            set_={"label": statement.excluded.label, "updated_at": func.now()},
            where=AuditActorLabel.label.is_distinct_from(statement.excluded.label),
        )
    )


async def forget(session: AsyncSession, *, actor_type: str, actor_id: str) -> None:
    await session.execute(
        delete(AuditActorLabel).where(
            AuditActorLabel.actor_type == actor_type, AuditActorLabel.actor_id == actor_id
        )
    )


def joins(actor_type: Mapped[str], actor_id: Mapped[str | None]) -> ColumnElement[bool]:
    """The join condition from an entry's actor columns to its label."""
    return and_(AuditActorLabel.actor_type == actor_type, AuditActorLabel.actor_id == actor_id)
