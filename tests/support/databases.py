"""Test databases cloned from the migrated template, made one test ahead and dropped after
the test in a thread of their own, so a test does not wait for either.

Cloning a database is a copy of its catalogue: tens of milliseconds on a quiet machine, a
few hundred on a busy one, twice per test (the clone and the drop). A test mostly waits on
its servers and the database, so the clone of the next test's database and the drop of the
last one's fit in those waits. Each test still gets a database nobody else has touched:
made from the template, never reused.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager

import psycopg
from psycopg import sql

from cybergine.db import migrate
from cybergine.db.engine import Database
from cybergine.db.urls import with_database

TEMPLATE = "cybergine_template"


def create_database(admin_url: str, *, template: str | None = TEMPLATE) -> str:
    name = _new_name()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(_create_statement(name, template))
    return with_database(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(_drop_statement(url))


def _new_name() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


def _create_statement(name: str, template: str | None) -> sql.Composed:
    if template is None:
        return sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    # FILE_COPY copies the template's files whole instead of writing every block through
    # the WAL; on a cluster without fsync its checkpoints cost little, and whole suites ran
    # in 399 and 373 s against 422 and 416 s with WAL_LOG.
    return sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
        sql.Identifier(name), sql.Identifier(template)
    )


def _drop_statement(url: str) -> sql.Composed:
    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    return sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))


@asynccontextmanager
async def migrated_to(url: str, revision: str) -> AsyncIterator[Database]:
    """An empty database migrated up to `revision`, for the tests of the migration after it."""
    migrate.upgrade(url, revision)
    database = Database(url, pool_size=2)
    try:
        yield database
    finally:
        await database.dispose()


class Clones:
    """Fresh clones of the template for one test process, the next one made in advance."""

    def __init__(self, admin_url: str) -> None:
        self._admin_url = admin_url
        # One thread: clones and drops run in the order asked, one at a time.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases")
        self._next: Future[str] | None = None
        self._drops: list[Future[None]] = []
        # One connection for all of them, used only in that thread: a new connection is a
        # new server process (about 4 ms of CPU between client and server), and two per
        # test were about half of the suite's connections.
        self._admin: psycopg.Connection[tuple[object, ...]] | None = None

    def _execute(self, statement: sql.Composed) -> None:
        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(self._admin_url, autocommit=True)
        self._admin.execute(statement)

    def _create(self) -> str:
        name = _new_name()
        self._execute(_create_statement(name, TEMPLATE))
        return with_database(self._admin_url, name)

    def _clone(self) -> Future[str]:
        return self._thread.submit(self._create)

    def take(self) -> str:
        """A database of the caller's own; the next caller's is started now."""
        ready = self._next or self._clone()
        self._next = self._clone()
        return ready.result()

    def give_back(self, url: str) -> None:
        """Dropped once the thread gets to it; a drop that failed fails the next call."""
        for dropped in [d for d in self._drops if d.done()]:
            dropped.result()
            self._drops.remove(dropped)
        self._drops.append(self._thread.submit(self._execute, _drop_statement(url)))

    def close(self) -> None:
        """Drops the clone nobody took and waits for every pending drop."""
        if self._next is not None:
            self.give_back(self._next.result())
            self._next = None
        self._thread.shutdown(wait=True)
        if self._admin is not None:
            self._admin.close()
        for dropped in self._drops:
            dropped.result()
