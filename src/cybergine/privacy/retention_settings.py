"""An organisation's own retention settings (policy §11: "configurable retention periods
may be available per Organisation").

One row per organisation, created the first time it sets something. No row, or no
period, means the policy's default: conversation history is kept while the account is
active, and goes with the account.
"""

from __future__ import annotations

from sqlalchemy import Integer, Table, UniqueConstraint, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.accounts.principal import Principal
from cybergine.db.base import Base, TenantMixin
from cybergine.db.ids import uuid7
from cybergine.db.tenancy import TenantScope
from cybergine.errors import InvalidInput
from cybergine.privacy import audit
from cybergine.privacy.retention import CONVERSATION_DAYS_MAX, CONVERSATION_DAYS_MIN, Retention


class RetentionSettings(TenantMixin, Base):
    __tablename__ = "retention_settings"
    # Part of the account's configuration: kept while it exists, erased with it.
    __retention__ = Retention.ACCOUNT
    __table_args__ = (UniqueConstraint("organisation_id"),)

    # Days after a conversation's last activity when it is purged, with its messages,
    # attachments and raw events; None: kept while the account is active.
    conversation_days: Mapped[int | None] = mapped_column(Integer, default=None)


def check_conversation_days(days: int | None) -> int | None:
    """The one check of a conversation retention period, for the API and the dashboard."""
    if days is not None and not CONVERSATION_DAYS_MIN <= days <= CONVERSATION_DAYS_MAX:
        raise InvalidInput(
            f"A conversation retention period is {CONVERSATION_DAYS_MIN} to "
            f"{CONVERSATION_DAYS_MAX} days, or none (kept while the account is active).",
            field="conversation_days",
        )
    return days


async def conversation_days(scope: TenantScope) -> int | None:
    return await scope.session.scalar(
        select(RetentionSettings.conversation_days).where(
            RetentionSettings.organisation_id == scope.organisation_id
        )
    )


async def set_conversation_days(scope: TenantScope, caller: Principal, days: int | None) -> None:
    """Set (or with None, clear) the period; audited when it changes. The next purge
    applies it: lowering it purges what is now past it, raising it saves what is left."""
    days = check_conversation_days(days)
    table = RetentionSettings.__table__
    assert isinstance(table, Table)
    # Locks the organisation's row, so two changes at once are audited in order.
    previous = await scope.session.scalar(
        select(RetentionSettings.conversation_days)
        .where(RetentionSettings.organisation_id == scope.organisation_id)
        .with_for_update()
    )
    upsert = insert(table).values(
        id=uuid7(),
        organisation_id=scope.organisation_id,
        conversation_days=days,
    )
    await scope.session.execute(
        upsert.on_conflict_do_update(
            index_elements=[table.c.organisation_id],
            set_={"conversation_days": days, "updated_at": func.now()},
        )
    )
    if previous != days:
        await audit.record(
            scope.session,
            action="organisation.retention.changed",
            actor=caller.actor,
            organisation_id=scope.organisation_id,
            target_type="organisation",
            target_id=str(scope.organisation_id),
            details={"field": "conversation_days", "from": previous, "to": days},
        )
