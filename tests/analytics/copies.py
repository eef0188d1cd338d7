"""A stand-in for a read replica: a copy of a test's database (no streaming replica runs
here), and the URL of an analytics database that cannot be reached."""

from __future__ import annotations

import psycopg

from tests.support.databases import create_database

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"
ATTEMPTS = 50


def _name(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?", 1)[0]


def copy_of(admin_url: str, url: str) -> str:
    """A new database holding what ``url``'s holds now (``CREATE DATABASE ... TEMPLATE``).
    Its source must have no other session: an autovacuum worker may hold one for a
    moment, so a bounded number of tries."""
    for attempt in range(ATTEMPTS):
        try:
            return create_database(admin_url, template=_name(url))
        except psycopg.errors.ObjectInUse:
            if attempt == ATTEMPTS - 1:
                raise
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute("SELECT pg_sleep(0.1)")
    raise AssertionError("no attempt made")
