"""The message types the assistant never answers are listed once: every path that records,
answers or hands back a conversation reads conversations.message_types.SILENT_TYPES."""

from __future__ import annotations

import ast
from pathlib import Path

import cybergine
from cybergine.conversations import message_types

SOURCE = Path(cybergine.__file__).parent


def _string_collections(tree: ast.AST) -> list[set[str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Set | ast.Tuple | ast.List):
            strings = {
                e.value
                for e in node.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            }
            if strings:
                found.append(strings)
    return found


def test_no_module_keeps_its_own_copy_of_the_silent_types() -> None:
    copies = [
        str(path.relative_to(SOURCE))
        for path in sorted(SOURCE.rglob("*.py"))
        if path != Path(message_types.__file__)
        and "migrations" not in path.parts  # history: never edited
        and any(
            {"reaction", "unsupported"} <= strings
            for strings in _string_collections(ast.parse(path.read_text()))
        )
    ]
    assert copies == []
