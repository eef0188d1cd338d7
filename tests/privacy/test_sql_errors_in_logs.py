"""A database error reaches the logs without the values it was given (policy §12): the
statement's parameters are hidden, and so is PostgreSQL's DETAIL, which quotes the row
at fault. Code that needs the details still finds them on the driver's error."""

from __future__ import annotations

import json

import pytest
import structlog
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from cybergine.db.engine import Database
from cybergine.logging import configure_logging

PHONE = "15550007777"
WORDS = "my secret parcel to Zanzibar"


async def test_a_failed_statement_logs_no_parameter_value(
    database: Database, capfd: pytest.CaptureFixture[str]
) -> None:
    insert = text("INSERT INTO organisations (id, name, status) VALUES (:id, :name, 'active')")
    values = {"id": "0192f0a0-0000-7000-8000-000000000001", "name": f"{WORDS} {PHONE}"}
    async with database.transaction() as session:
        await session.execute(insert, values)
    configure_logging("INFO", "json")
    try:
        with pytest.raises(IntegrityError) as raised:
            async with database.transaction() as session:
                await session.execute(insert, values)  # the same id again
        # As the request middleware logs an error nobody handled.
        try:
            raise raised.value
        except IntegrityError:
            structlog.get_logger("cybergine.web.middleware").exception("unhandled error")
        lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line]
    finally:
        configure_logging("WARNING", "console")
    [logged] = [line for line in lines if line.get("event") == "unhandled error"]
    rendered = json.dumps(logged)
    assert "duplicate key value violates unique constraint" in rendered
    assert "parameters hidden" in rendered
    for value in (PHONE, "Zanzibar", values["id"]):
        assert value not in rendered
    # The details are still there for code that handles the error.
    assert values["id"] in (raised.value.orig.diag.message_detail or "")  # type: ignore[union-attr]
