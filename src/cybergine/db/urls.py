"""One database URL, spelled the way each consumer wants it.

Operators give a plain ``postgresql://`` URL (or ``postgres://``); SQLAlchemy needs the
psycopg dialect named, while psycopg and Procrastinate take the libpq form.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError


def _parse(url: str) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() not in {"postgresql", "postgres"}:
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
    return parsed


def check_postgresql_url(url: str) -> None:
    """A ``ValueError`` unless ``url`` is a PostgreSQL URL; its message never quotes the
    password."""
    try:
        _parse(url)
    except ArgumentError:
        raise ValueError("not a URL like postgresql://user:password@host:5432/database") from None


def sqlalchemy_url(url: str) -> URL:
    return _parse(url).set(drivername="postgresql+psycopg")


def libpq_url(url: str) -> str:
    """A libpq connection URI (what ``psycopg.connect`` takes)."""
    return _parse(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    return _parse(url).set(database=database).render_as_string(hide_password=False)


def redacted(url: str) -> str:
    return _parse(url).render_as_string(hide_password=True)
