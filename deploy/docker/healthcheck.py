"""The image's HEALTHCHECK: the web role is healthy when ``/readyz`` answers 200; the
other roles (``worker``, ``migrate``) listen on no port and are healthy while they run.

The role is read from PID 1's command line (``tini -- cybergine serve --port 8000``), so
one image serves every role. Standard library only: it runs with Debian's python3.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

WILDCARDS = {"0.0.0.0", "::", ""}  # noqa: S104


def option(argv: list[str], name: str, default: str) -> str:
    """The value of ``--name V`` or ``--name=V`` in ``argv``."""
    for index, argument in enumerate(argv):
        if argument == name and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith(name + "="):
            return argument.split("=", 1)[1]
    return default


def readiness_url(argv: list[str]) -> str | None:
    """Where the web role answers ``/readyz``; None for a role without a port."""
    programs = [i for i, a in enumerate(argv) if a.rsplit("/", 1)[-1] == "cybergine"]
    if not programs or programs[0] + 1 >= len(argv):
        return None
    role = argv[programs[0] + 1]
    if role != "serve":
        return None
    host = option(argv, "--host", "127.0.0.1")
    host = "127.0.0.1" if host in WILDCARDS else host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{option(argv, '--port', '8000')}/readyz"


def main() -> int:
    argv = Path("/proc/1/cmdline").read_bytes().decode().split("\0")
    url = readiness_url([a for a in argv if a])
    if url is None:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 (http by design)
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
