"""The chat widget shops embed (``widget.js``), checked as a file: small enough to load
on every page of a shop, free of the APIs that turn text into code or markup, talking to
no other host than the one it came from, and valid JavaScript. Its behaviour in a
browser is tested against the real server elsewhere."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import cybergine.channels.webchat as webchat

WIDGET = Path(webchat.__file__).parent / "widget" / "widget.js"
MAX_GZIP_BYTES = 25 * 1024


@pytest.fixture(scope="module")
def source() -> str:
    return WIDGET.read_text(encoding="utf-8")


def test_it_is_small_enough_for_every_page_view() -> None:
    size = len(gzip.compress(WIDGET.read_bytes(), 9))
    assert size <= MAX_GZIP_BYTES, f"widget.js is {size} bytes gzipped"


@pytest.mark.parametrize(
    "pattern",
    [
        r"innerHTML",
        r"outerHTML",
        r"insertAdjacentHTML",
        r"createContextualFragment",
        r"DOMParser",
        r"document\.write",
        r"\beval\s*\(",
        r"new\s+Function\b",
        r"\bFunction\s*\(",
        # Timers given a string compile it.
        r"set(?:Timeout|Interval)\s*\(\s*[\"'`]",
    ],
)
def test_no_text_ever_becomes_code_or_markup(source: str, pattern: str) -> None:
    """Everything is built with createElement and textContent: a hostile page or message
    can only ever show up as text. Checked over the whole file, comments included."""
    assert not re.search(pattern, source), pattern


def test_no_address_of_another_host(source: str) -> None:
    """The widget derives its server from its own script URL; a literal web address
    would be a request (or a link) somewhere else."""
    assert "http://" not in source
    assert "https://" not in source
    assert not re.search(r"[\"'`]//", source), "protocol-relative address"


def test_requests_go_to_its_own_origin_only(source: str) -> None:
    """One fetch, to the script's own origin, and one WebSocket, built from it; no other
    way out of the page."""
    assert re.findall(r"\bfetch\s*\(([^,]*)", source) == ["HOST + API + path"]
    assert re.findall(r"new\s+WebSocket\s*\(([^)]*\))", source) == ["socketUrl()"]
    assert 'HOST.replace(/^http/, "ws") + API' in source
    for forbidden in ("XMLHttpRequest", "sendBeacon", "new Image", "importScripts", "import("):
        assert forbidden not in source, forbidden


def test_one_frozen_global(source: str) -> None:
    assert not re.search(r"\bwindow\.\w+\s*=[^=]", source)
    assert 'Object.defineProperty(window, "CybergineWidget"' in source
    assert "Object.freeze(" in source


@pytest.mark.parametrize(
    "test_id",
    [
        "cg-launcher",
        "cg-panel",
        "cg-input",
        "cg-send",
        "cg-handoff",
        "cg-message",
        "cg-sources",
        "cg-typing",
        "cg-badge",
        "cg-error",
        "cg-consent-yes",
        "cg-consent-no",
    ],
)
def test_browser_tests_can_address_every_part(source: str, test_id: str) -> None:
    assert f'"data-testid": "{test_id}"' in source


def test_it_parses() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    result = subprocess.run(
        [node, "--check", str(WIDGET)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
