"""Recording a version of the privacy policy and telling every staff user (policy §18):
by e-mail when it is recorded, and in the dashboard until they acknowledge it. A version
takes effect at least ``NOTICE_DAYS`` after it is recorded; a closer date is refused."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import User
from cybergine.errors import InvalidInput, NotFound
from cybergine.mail.service import queue_email
from cybergine.origins import https_link
from cybergine.privacy import audit
from cybergine.privacy_policy.models import MAX_SUMMARY_CHARS, MAX_URL_CHARS, PolicyVersion

# Policy §18: users are told at least this long before a change takes effect.
NOTICE_DAYS = 30
# A version stays in the dashboard's banner, until acknowledged, this long after it took
# effect; older ones are not news to someone who signs up later.
SHOWN_AFTER_EFFECT = timedelta(days=30)
ADDED_ACTION = "privacy_policy.version.added"


def earliest_effective_date(today: date | None = None) -> date:
    return (today or datetime.now(UTC).date()) + timedelta(days=NOTICE_DAYS)


def clean_effective_date(value: date | str, *, today: date | None = None) -> date:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(
                f"{text[:40]!r} is not a date: write it as YYYY-MM-DD.", field="effective_on"
            ) from None
    earliest = earliest_effective_date(today)
    if value < earliest:
        raise InvalidInput(
            f"A new version takes effect at least {NOTICE_DAYS} days after it is announced, "
            f"so that every user is told in time (policy §18): choose {earliest.isoformat()} "
            "or later.",
            field="effective_on",
        )
    return value


def clean_summary(value: str) -> str:
    summary = " ".join(value.split())
    if not summary or len(summary) > MAX_SUMMARY_CHARS:
        raise InvalidInput(
            f"The summary says what changes, in 1 to {MAX_SUMMARY_CHARS} characters.",
            field="summary",
        )
    return summary


def clean_url(value: str) -> str:
    link = https_link(value, max_length=MAX_URL_CHARS)
    if link is None:
        raise InvalidInput(
            "The new version's address is an https:// URL, like https://example.com/privacy.",
            field="url",
        )
    return link


async def add_version(
    session: AsyncSession,
    *,
    effective_on: date | str,
    url: str,
    summary: str,
    public_url: str,
    actor: audit.Actor,
    today: date | None = None,
) -> PolicyVersion:
    """Record a version and e-mail every staff user about it, in the caller's
    transaction: the version exists only with its e-mails."""
    version = PolicyVersion(
        effective_on=clean_effective_date(effective_on, today=today),
        url=clean_url(url),
        summary=clean_summary(summary),
        notified_users=0,
    )
    session.add(version)
    addresses = list(await session.scalars(select(User.email).order_by(User.email)))
    body = notice_email(version, public_url)
    for address in addresses:
        await queue_email(session, to=address, subject=NOTICE_SUBJECT, body=body)
    version.notified_users = len(addresses)
    await session.flush()
    await audit.record(
        session,
        action=ADDED_ACTION,
        actor=actor,
        target_type="policy_version",
        target_id=str(version.id),
        details={"effective_on": version.effective_on.isoformat(), "notified": len(addresses)},
    )
    return version


NOTICE_SUBJECT = "Our privacy policy is changing"


def notice_email(version: PolicyVersion, public_url: str) -> str:
    return (
        f"Cybergine's privacy policy changes on {version.effective_on:%d %B %Y}.\n\n"
        f"{version.summary}\n\n"
        f"Read the new version: {version.url}\n\n"
        "Continuing to use the service after that date means accepting it. You can "
        f"acknowledge this notice in the dashboard: {public_url}/\n"
    )


async def list_versions(session: AsyncSession) -> list[PolicyVersion]:
    return list(
        await session.scalars(
            select(PolicyVersion).order_by(
                PolicyVersion.effective_on.desc(), PolicyVersion.created_at.desc()
            )
        )
    )


@dataclass(frozen=True)
class PendingNotice:
    version_id: uuid.UUID
    effective_on: date
    url: str
    summary: str
    in_effect: bool


async def pending_notice(
    session: AsyncSession, user_id: uuid.UUID, *, today: date | None = None
) -> PendingNotice | None:
    """The newest version this user has not acknowledged, while it is news: recorded
    after their last acknowledgement, and not in effect for longer than
    ``SHOWN_AFTER_EFFECT``."""
    today = today or datetime.now(UTC).date()
    acknowledged = select(User.policy_acknowledged_at).where(User.id == user_id).scalar_subquery()
    version = await session.scalar(
        select(PolicyVersion)
        .where(
            PolicyVersion.effective_on >= today - SHOWN_AFTER_EFFECT,
            PolicyVersion.created_at
            > func.coalesce(acknowledged, datetime.min.replace(tzinfo=UTC)),
        )
        .order_by(PolicyVersion.created_at.desc())
        .limit(1)
    )
    if version is None:
        return None
    return PendingNotice(
        version.id,
        version.effective_on,
        version.url,
        version.summary,
        version.effective_on <= today,
    )


async def acknowledge(session: AsyncSession, user: User, version_id: uuid.UUID) -> None:
    """The user read the notice of ``version_id``: it, and every older one, stop being
    shown to them. Acknowledging an older notice never brings a newer one back."""
    recorded = await session.scalar(
        select(PolicyVersion.created_at).where(PolicyVersion.id == version_id)
    )
    if recorded is None:
        raise NotFound("No such version of the privacy policy.")
    await session.execute(
        update(User)
        .where(User.id == user.id)
        .values(
            policy_acknowledged_at=func.greatest(
                func.coalesce(User.policy_acknowledged_at, recorded), recorded
            )
        )
        .execution_options(synchronize_session=False)
    )
