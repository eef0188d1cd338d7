"""The security monitor (policy §12): counts each trigger of ``triggers.TRIGGERS`` in
fixed windows of ``security_alert_window_minutes`` and, where a count reaches its
threshold, raises an alert: a ``security_alerts`` row, an audit entry and an e-mail to
each owner of the organisation, in one transaction.

Windows are aligned on the epoch, and each run looks at the window that just ended and
the current one, so a burst is seen within a run of it and whatever the schedule. An
alert is unique per organisation, kind, subject and window (the row's constraint): a
run repeated, or two at once, raises it once, and a burst that goes on raises it again
in the next window, not on every run.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, String, and_, cast, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import Membership, Organisation, Role, User
from cybergine.mail.service import queue_email
from cybergine.privacy import audit
from cybergine.privacy.audit import AuditEvent
from cybergine.security import signals
from cybergine.security.models import AlertKind, SecurityAlert, SecuritySignal
from cybergine.security.triggers import ALERT_ACTION, LOGIN_FAILED, TRIGGERS, Trigger
from cybergine.settings import Settings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How far back a throttled sign-in's account is looked for among failed ones (a
# throttled attempt is recorded without the account: it was refused before the lookup).
ACCOUNT_LOOKBACK = timedelta(days=1)
MONITOR = audit.Actor.system("security-monitor")


@dataclass(frozen=True)
class Burst:
    organisation_id: uuid.UUID
    subject_id: uuid.UUID | None
    count: int


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class RaisedAlert:
    id: uuid.UUID
    kind: AlertKind
    organisation_id: uuid.UUID
    subject_id: uuid.UUID | None
    count: int
    recipients: list[str]


def windows_to_check(now: datetime, minutes: int) -> list[Window]:
    """The window that ended last and the current one."""
    length = timedelta(minutes=minutes)
    current = EPOCH + ((now - EPOCH) // length) * length
    return [Window(current - length, current), Window(current, current + length)]


async def raise_alerts(
    session: AsyncSession, settings: Settings, *, now: datetime | None = None
) -> list[RaisedAlert]:
    """Raise every alert due in the windows around ``now``; returns those raised now."""
    now = now or datetime.now(UTC)
    raised: list[RaisedAlert] = []
    for window in windows_to_check(now, settings.security_alert_window_minutes):
        for trigger in TRIGGERS:
            threshold: int = getattr(settings, trigger.setting)
            for burst in await COUNTERS[trigger.kind](session, trigger, window, threshold):
                alert = await _raise(session, trigger, burst, window, threshold, settings)
                if alert is not None:
                    raised.append(alert)
    await signals.prune(session, now)
    return raised


# --- counting -------------------------------------------------------------------------

Counter = Callable[[AsyncSession, Trigger, Window, int], Awaitable[list[Burst]]]


def _in_window(window: Window, trigger: Trigger) -> ColumnElement[bool]:
    return and_(
        AuditEvent.action.in_(trigger.audit_actions),
        AuditEvent.at >= window.start,
        AuditEvent.at < window.end,
    )


async def _per_organisation(
    session: AsyncSession, trigger: Trigger, window: Window, threshold: int
) -> list[Burst]:
    """Audit entries of the trigger per organisation (one still there)."""
    rows = await session.execute(
        select(AuditEvent.organisation_id, func.count())
        .where(
            _in_window(window, trigger),
            AuditEvent.organisation_id.in_(select(Organisation.id)),
        )
        .group_by(AuditEvent.organisation_id)
        .having(func.count() >= threshold)
    )
    return [Burst(org, None, count) for org, count in rows.all() if org is not None]


async def _per_account(
    session: AsyncSession, trigger: Trigger, window: Window, threshold: int
) -> list[Burst]:
    """Failed and throttled sign-ins per account (the keyed hash the entries carry),
    for accounts of a user: alerted to each organisation the user belongs to. Attempts
    at addresses of no one are refused alike and alert no one."""
    account_key = cast(AuditEvent.details["account_key"].astext, String)
    rows = await session.execute(
        select(account_key, func.count())
        .where(_in_window(window, trigger))
        .group_by(account_key)
        .having(func.count() >= threshold)
    )
    counts = {key: count for key, count in rows.all() if key}
    if not counts:
        return []
    users = await session.execute(
        select(account_key, func.max(AuditEvent.actor_id))
        .where(
            AuditEvent.action == LOGIN_FAILED,
            AuditEvent.actor_type == audit.ActorType.USER.value,
            AuditEvent.actor_id.is_not(None),
            AuditEvent.at >= window.start - ACCOUNT_LOOKBACK,
            AuditEvent.at < window.end,
            account_key.in_(counts),
        )
        .group_by(account_key)
    )
    user_counts = {uuid.UUID(str(user_id)): counts[key] for key, user_id in users.all()}
    if not user_counts:
        return []
    memberships = await session.execute(
        select(Membership.organisation_id, Membership.user_id).where(
            Membership.user_id.in_(user_counts)
        )
    )
    return [Burst(org, user, user_counts[user]) for org, user in memberships.all()]


async def _per_signal_subject(
    session: AsyncSession, trigger: Trigger, window: Window, threshold: int
) -> list[Burst]:
    """Counted signals of the trigger's kind, per organisation and subject."""
    total = func.sum(SecuritySignal.count)
    rows = await session.execute(
        select(SecuritySignal.organisation_id, SecuritySignal.subject_id, total)
        .where(
            SecuritySignal.kind == trigger.kind.value,
            SecuritySignal.minute >= window.start,
            SecuritySignal.minute < window.end,
        )
        .group_by(SecuritySignal.organisation_id, SecuritySignal.subject_id)
        .having(total >= threshold)
    )
    return [Burst(org, subject, int(count)) for org, subject, count in rows.all()]


COUNTERS: dict[AlertKind, Counter] = {
    AlertKind.FAILED_SIGN_INS: _per_account,
    AlertKind.PERMISSION_DENIALS: _per_organisation,
    AlertKind.SIGNATURE_FAILURES: _per_signal_subject,
    AlertKind.EXPORTS_AND_ERASURES: _per_organisation,
}


# --- raising --------------------------------------------------------------------------


async def _raise(
    session: AsyncSession,
    trigger: Trigger,
    burst: Burst,
    window: Window,
    threshold: int,
    settings: Settings,
) -> RaisedAlert | None:
    inserted = await session.execute(
        insert(SecurityAlert)
        .values(
            organisation_id=burst.organisation_id,
            kind=trigger.kind.value,
            subject_id=burst.subject_id,
            window_start=window.start,
            window_end=window.end,
            count=burst.count,
            threshold=threshold,
        )
        .on_conflict_do_nothing()
        .returning(SecurityAlert.id)
    )
    alert_id = inserted.scalar_one_or_none()
    if alert_id is None:
        return None  # raised already in this window
    await audit.record(
        session,
        action=ALERT_ACTION,
        actor=MONITOR,
        organisation_id=burst.organisation_id,
        target_type="security_alert",
        target_id=str(alert_id),
        details={
            "kind": trigger.kind.value,
            "count": burst.count,
            "threshold": threshold,
            "window_start": window.start.isoformat(),
            "window_minutes": settings.security_alert_window_minutes,
            **({"subject_id": str(burst.subject_id)} if burst.subject_id else {}),
        },
    )
    recipients = await owner_addresses(session, burst.organisation_id)
    body = _email_body(trigger, burst, window, threshold, settings.public_url)
    for address in recipients:
        await queue_email(session, to=address, subject=trigger.subject, body=body)
    return RaisedAlert(
        alert_id, trigger.kind, burst.organisation_id, burst.subject_id, burst.count, recipients
    )


async def owner_addresses(session: AsyncSession, organisation_id: uuid.UUID) -> list[str]:
    return list(
        await session.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.organisation_id == organisation_id, Membership.role == Role.OWNER)
            .order_by(User.email)
        )
    )


def _email_body(
    trigger: Trigger, burst: Burst, window: Window, threshold: int, public_url: str
) -> str:
    # Ids only: the e-mail names no one (who it was is in the audit log, for the owners).
    about = f"\nIt concerns {burst.subject_id}.\n" if burst.subject_id else ""
    return (
        f"{trigger.what}\n{about}\n"
        f"Counted between {window.start:%Y-%m-%d %H:%M} and {window.end:%H:%M} UTC: "
        f"{burst.count} (alert at {threshold}). This alert is sent once per window.\n\n"
        f"The audit log has the details: {public_url}/audit\n"
    )
