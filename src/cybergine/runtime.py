"""Where the database comes from: the configured URL, or the embedded server."""

from __future__ import annotations

from cybergine.db import embedded
from cybergine.settings import Settings


def resolve_database_url(settings: Settings) -> str:
    """The URL to use; in embedded mode this starts (or attaches to) the server."""
    if settings.database_url is not None:
        return settings.database_url
    return embedded.start(settings.data_dir).url
