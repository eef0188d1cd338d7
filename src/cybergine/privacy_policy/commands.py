"""What ``cybergine policy ...`` runs: the operator's side of policy versions."""

from __future__ import annotations

from cybergine.db.engine import Database
from cybergine.privacy import audit
from cybergine.privacy_policy import service
from cybergine.settings import Settings

OPERATOR = audit.Actor.system("operator")


async def add_version(
    database_url: str, settings: Settings, *, effective: str, url: str, summary: str
) -> str:
    """Records the version (``service.add_version``); returns what to print. Raises
    ``InvalidInput`` (a date closer than 30 days, a URL that is not https)."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.transaction() as session:
            version = await service.add_version(
                session,
                effective_on=effective,
                url=url,
                summary=summary,
                public_url=settings.public_url,
                actor=OPERATOR,
            )
            return (
                f"version {version.id} takes effect on {version.effective_on.isoformat()}; "
                f"{version.notified_users} users are being e-mailed and see it in the dashboard"
            )
    finally:
        await database.dispose()


async def list_versions(database_url: str) -> list[str]:
    database = Database(database_url, pool_size=1)
    try:
        async with database.transaction() as session:
            return [
                f"{v.effective_on.isoformat()}  {v.url}  (announced {v.created_at:%Y-%m-%d}, "
                f"{v.notified_users} users e-mailed)"
                for v in await service.list_versions(session)
            ]
    finally:
        await database.dispose()
