"""The ``cybergine`` command line: its root (``root``) and its commands, one module per
group, each registering itself on the root when imported here."""

from __future__ import annotations

from cybergine.cli import analytics, data, keys, ops, platform, privacy
from cybergine.cli.root import cli

__all__ = ["cli", "main"]

_COMMANDS = (analytics, data, keys, ops, platform, privacy)  # imported for what they register


def main() -> None:
    cli()
