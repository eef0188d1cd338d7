"""Policy §11 and §18: the versions of the privacy policy are compliance records, the
proof of which version was in force when and that everyone was told ahead. The retention
purge keeps a version while it is in force, however old, and for 7 years after a newer
one took effect; only then does it go, and the dry run says so first."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from cybergine.db.engine import Database
from cybergine.privacy import purge
from cybergine.privacy.retention import Retention
from cybergine.privacy_policy.models import PolicyVersion

NOW = datetime(2040, 6, 1, 12, tzinfo=UTC)


def _years_ago(years: int) -> date:
    return (NOW - timedelta(days=round(years * 365.25))).date()


async def test_versions_stay_while_in_force_and_seven_years_after_they_were_replaced(
    database: Database,
) -> None:
    effective = {
        "https://cybergine.example/privacy/2030": _years_ago(10),  # replaced 8 years ago
        "https://cybergine.example/privacy/2032": _years_ago(8),  # replaced 3 years ago
        "https://cybergine.example/privacy/2037": _years_ago(3),  # in force
    }
    async with database.transaction() as session:
        for url, effective_on in effective.items():
            session.add(
                PolicyVersion(
                    effective_on=effective_on,
                    url=url,
                    summary="What changes.",
                    notified_users=3,
                    created_at=datetime.combine(effective_on, datetime.min.time(), UTC)
                    - timedelta(days=31),
                )
            )

    due = await purge.run(database, as_of=NOW, dry_run=True)
    assert due.by_organisation().get(None, {}).get("audit", {}).get("policy_versions") == 1
    await purge.run(database, as_of=NOW)
    await purge.run(database, as_of=NOW)  # again: nothing more goes
    async with database.transaction() as session:
        kept = list(await session.scalars(select(PolicyVersion.url).order_by(PolicyVersion.url)))
    assert kept == [
        "https://cybergine.example/privacy/2032",
        "https://cybergine.example/privacy/2037",
    ]
    # The version in force stays however long it has been in force.
    ten_years_on = NOW + timedelta(days=3653)
    await purge.run(database, as_of=ten_years_on)
    async with database.transaction() as session:
        kept = list(await session.scalars(select(PolicyVersion.url)))
    assert kept == ["https://cybergine.example/privacy/2037"]
    assert PolicyVersion.__retention__ is Retention.AUDIT
