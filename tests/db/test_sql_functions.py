"""The SQL functions deployed are the newest versions in ``cybergine/db/sql``: a file there
is never edited once a migration loads it, so a rule changed without a new migration
(or a migration that forgets to load the new file) fails here."""

from __future__ import annotations

import re
from pathlib import Path

import procrastinate
import psycopg
import pytest

import cybergine.db
from cybergine.conversations.models import Channel
from cybergine.db.urls import libpq_url

SQL_DIR = Path(cybergine.db.__file__).parent / "sql"
# Each function, its file's stem and its arguments.
FUNCTIONS = {
    "cybergine_record_inbound": ("record_inbound", "account jsonb, messages jsonb, names jsonb"),
    "cybergine_whatsapp_ingest": ("whatsapp_ingest", "batch jsonb, names jsonb"),
    "cybergine_knowledge_gap_days_keep": ("knowledge_gap_days_keep", ""),
    "cybergine_knowledge_gap_days_rebuild": ("knowledge_gap_days_rebuild", "organisation uuid"),
    "cybergine_knowledge_gap_months_keep": ("knowledge_gap_months_keep", ""),
}


def _newest(stem: str) -> Path:
    versions = sorted(SQL_DIR.glob(f"{stem}_*.sql"))
    assert versions, f"no {stem}_*.sql in {SQL_DIR}"
    return versions[-1]


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_the_deployed_function_is_the_newest_file(database_url: str, function: str) -> None:
    stem, arguments = FUNCTIONS[function]
    source = _newest(stem).read_text()
    header, _, rest = source.partition("$$")
    body = rest.rpartition("$$")[0]
    # Settings the function runs with (SET name = value before its body).
    settings = [
        f"{name}={value}"
        for name, value in re.findall(r"^SET (\w+) = (\w+)$", header, flags=re.MULTILINE)
    ]
    with psycopg.connect(libpq_url(database_url)) as connection:
        deployed = connection.execute(
            "SELECT pg_get_function_identity_arguments(p.oid), p.prosrc, p.proconfig"
            " FROM pg_proc p WHERE p.proname = %s",
            [function],
        ).fetchall()
    assert deployed == [(arguments, body, settings or None)]
    assert f"{function}({arguments})" in header


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_the_functions_name_nothing_python_names(function: str) -> None:
    """Job names, locks, the NOTIFY channel and the channels a conversation is on come
    in as parameters (``inbound.RECORD_NAMES``, the account of each batch)."""
    body = _newest(FUNCTIONS[function][0]).read_text()
    named = ["'conversations:reply'", "'conversation:'", "'cybergine_events'", "'default'"]
    named += [f"'{channel.value}'" for channel in Channel]
    for literal in named:
        assert literal not in body


def test_jobs_are_deferred_through_the_procrastinate_function_it_uses_itself() -> None:
    """The functions defer the reply job as Procrastinate's own ``defer_jobs`` query
    does; an upgrade that renames its function fails here, not in production."""
    queries = (Path(procrastinate.__file__).parent / "sql" / "queries.sql").read_text()
    assert "procrastinate_defer_jobs_v1(" in queries
    assert "procrastinate_defer_jobs_v1(" in _newest("record_inbound").read_text()
