"""`cybergine kb import`: bulk JSON Lines import, idempotent by external_id, bad lines
reported by number and skipped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from cybergine.cli import cli
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge import service
from cybergine.knowledge.models import Chunk, Item, ItemStatus
from tests.support.factories import make_organisation

runner = CliRunner()


async def _invoke(args: list[str], env: dict[str, str]) -> Result:
    # The command runs its own event loop (asyncio.run): give it a thread of its own.
    return await asyncio.to_thread(runner.invoke, cli, args, env=env)


def _write(path: Path, lines: list[object]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


async def test_import_is_searchable_and_idempotent(
    database: Database, database_url: str, key_env: dict[str, str], tmp_path: Path
) -> None:
    organisation, _ = await make_organisation(database)
    env = {"CYBERGINE_DATABASE_URL": database_url, "CYBERGINE_EMBEDDINGS": "none", **key_env}
    source = _write(
        tmp_path / "pages.jsonl",
        [
            {"external_id": "p1", "title": "Linen care", "text": "Wash linen at forty degrees."},
            {"external_id": "p2", "title": "Wool care", "text": "Hand wash wool in cold water."},
            "",
            {"external_id": "p3", "title": "Silk", "text": "Dry clean silk.", "metadata": {"k": 1}},
        ],
    )
    first = await _invoke(
        ["kb", "import", str(source), "--org", str(organisation.id), "--collection", "care"],
        env=env,
    )
    assert first.exit_code == 0, first.output
    assert "imported 3 documents" in first.output

    _write(
        source, [{"external_id": "p1", "title": "Linen care", "text": "Linen likes a cool iron."}]
    )
    again = await _invoke(
        ["kb", "import", str(source), "--org", str(organisation.id), "--collection", "care"],
        env=env,
    )
    assert again.exit_code == 0, again.output

    async with database.transaction() as session:
        items = (await session.execute(select(Item).order_by(Item.external_id))).scalars().all()
        assert [i.external_id for i in items] == ["p1", "p2", "p3"]
        assert all(i.status is ItemStatus.READY for i in items)
        assert items[0].body == "Linen likes a cool iron."
        assert items[0].version == 2
        chunk_texts = list((await session.execute(select(Chunk.text))).scalars())
        assert not any("forty degrees" in t for t in chunk_texts)
        hits = await service.search_knowledge(
            TenantScope(session, organisation.id), query="iron linen", provider=None
        )
    assert hits[0].external_id == "p1"


async def test_bad_lines_are_reported_and_skipped(
    database: Database, database_url: str, key_env: dict[str, str], tmp_path: Path
) -> None:
    organisation, _ = await make_organisation(database)
    env = {"CYBERGINE_DATABASE_URL": database_url, "CYBERGINE_EMBEDDINGS": "none", **key_env}
    source = _write(
        tmp_path / "pages.jsonl",
        [
            {"external_id": "ok", "title": "Fine", "text": "A good line."},
            "{not json",
            {"title": "No id", "text": "x"},
            {"external_id": "empty", "text": "   "},
            ["not", "an", "object"],
            {"external_id": "x" * 300, "text": "too long an id"},
        ],
    )
    result = await _invoke(["kb", "import", str(source), "--org", str(organisation.id)], env=env)
    assert result.exit_code == 1
    assert "imported 1 documents" in result.output
    for line in ("line 2", "line 3", "line 4", "line 5", "line 6"):
        assert line in result.output
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Item)) == 1


async def test_unknown_organisation_is_refused(
    database_url: str, key_env: dict[str, str], tmp_path: Path
) -> None:
    source = _write(tmp_path / "p.jsonl", [{"external_id": "a", "text": "b"}])
    env = {"CYBERGINE_DATABASE_URL": database_url, "CYBERGINE_EMBEDDINGS": "none", **key_env}
    result = await _invoke(
        ["kb", "import", str(source), "--org", "01a224cb-0000-7000-8000-000000000000"], env=env
    )
    assert result.exit_code == 1
    assert "No such organisation" in result.output
    bad = await _invoke(["kb", "import", str(source), "--org", "not-a-uuid"], env=env)
    assert bad.exit_code == 2
