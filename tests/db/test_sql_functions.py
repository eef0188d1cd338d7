"""The SQL functions deployed are the newest versions in ``cybergine/db/sql``: a file there
is never edited once a migration loads it, so a rule changed without a new migration
(or a migration that forgets to load the new file) fails here."""

from __future__ import annotations

from pathlib import Path

import psycopg

import cybergine.db
from cybergine.db.urls import libpq_url

SQL_DIR = Path(cybergine.db.__file__).parent / "sql"


def _newest(function: str) -> Path:
    versions = sorted(SQL_DIR.glob(f"{function}_*.sql"))
    assert versions, f"no {function}_*.sql in {SQL_DIR}"
    return versions[-1]


def test_the_deployed_whatsapp_ingest_is_the_newest_file(database_url: str) -> None:
    source = _newest("whatsapp_ingest").read_text()
    header, _, rest = source.partition("$$")
    body = rest.rpartition("$$")[0]
    with psycopg.connect(libpq_url(database_url)) as connection:
        deployed = connection.execute(
            "SELECT pg_get_function_identity_arguments(p.oid), p.prosrc FROM pg_proc p"
            " WHERE p.proname = 'cybergine_whatsapp_ingest'"
        ).fetchall()
    assert deployed == [("batch jsonb, names jsonb", body)]
    assert "cybergine_whatsapp_ingest(batch jsonb, names jsonb)" in header


def test_the_functions_name_nothing_python_names() -> None:
    """Job names, locks and channels come in as parameters (``ingest.INGEST_NAMES``)."""
    body = _newest("whatsapp_ingest").read_text()
    for literal in ("'conversations:reply'", "'conversation:'", "'cybergine_events'", "'default'"):
        assert literal not in body
