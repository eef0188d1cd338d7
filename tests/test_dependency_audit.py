"""`.ci/audit_dependencies.py` against a local stand-in for PyPI's JSON API."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import free_port

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "audit_dependencies.py"
ADVISORY = {
    "id": "GHSA-aaaa-bbbb-cccc",
    "aliases": ["CVE-2026-0001"],
    "summary": "Requests smuggling through a header",
    "fixed_in": ["1.0.1"],
    "link": "https://osv.dev/vulnerability/GHSA-aaaa-bbbb-cccc",
    "withdrawn": None,
}


@dataclass
class FakePyPI:
    """Projects as {name: {version: vulnerabilities}}; the last version is the latest.
    With ``per_release=False`` it answers release documents 404, as some proxies do."""

    projects: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    per_release: bool = True
    url: str = ""

    def document(self, path: str) -> dict[str, Any] | None:
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[0] == "pypi" and self.per_release:
            _, name, version, _ = parts
            releases = self.projects.get(name, {})
            return {"vulnerabilities": releases[version]} if version in releases else None
        if len(parts) == 3 and parts[0] == "pypi" and parts[1] in self.projects:
            releases = self.projects[parts[1]]
            latest = list(releases)[-1]
            return {
                "info": {"version": latest},
                "releases": {version: [] for version in releases},
                "vulnerabilities": releases[latest],
            }
        return None


@pytest.fixture
def pypi() -> Iterator[FakePyPI]:
    fake = FakePyPI()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            document = fake.document(self.path)
            body = json.dumps(document).encode() if document is not None else b""
            self.send_response(200 if document is not None else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/pypi"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def run_audit(
    tmp_path: Path,
    index_url: str,
    pins: str,
    exceptions: str = "",
    *,
    extra: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "constraints.txt").write_text(pins)
    (tmp_path / "exceptions.toml").write_text(exceptions)
    return subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--constraints",
            str(tmp_path / "constraints.txt"),
            "--exceptions",
            str(tmp_path / "exceptions.toml"),
            "--index-url",
            index_url,
            "--retry-delay",
            "0",
            *(extra or []),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def exception(kind: str, key: str, expires: datetime.date, package: str = "web-lib") -> str:
    key_name = "id" if kind == "vulnerability" else "version"
    return (
        f'[[{kind}]]\n{key_name} = "{key}"\npackage = "{package}"\n'
        f'reason = "not reachable from our code"\nexpires = {expires.isoformat()}\n'
    )


TOMORROW = datetime.date.today() + datetime.timedelta(days=1)
YESTERDAY = datetime.date.today() - datetime.timedelta(days=1)
PINS = "web-lib==1.0.0\n    # via cybergine\nother==2.0 ; sys_platform == 'win32'\n"


def test_a_known_vulnerability_fails_the_audit(pypi: FakePyPI, tmp_path: Path) -> None:
    pypi.projects = {"web-lib": {"1.0.0": [ADVISORY], "1.0.1": []}, "other": {"2.0": []}}
    result = run_audit(tmp_path, pypi.url, PINS)
    assert result.returncode == 1
    assert "web-lib==1.0.0: GHSA-aaaa-bbbb-cccc (CVE-2026-0001)" in result.stderr
    assert "fixed in: 1.0.1" in result.stderr
    assert "2 pins" in result.stdout


@pytest.mark.parametrize("named", ["GHSA-aaaa-bbbb-cccc", "CVE-2026-0001"])
def test_a_written_exception_accepts_it_until_it_expires(
    pypi: FakePyPI, tmp_path: Path, named: str
) -> None:
    pypi.projects = {"web-lib": {"1.0.0": [ADVISORY], "1.0.1": []}, "other": {"2.0": []}}
    accepted = run_audit(tmp_path, pypi.url, PINS, exception("vulnerability", named, TOMORROW))
    assert accepted.returncode == 0, accepted.stderr
    assert "accepted: web-lib==1.0.0: GHSA-aaaa-bbbb-cccc" in accepted.stdout

    expired = run_audit(tmp_path, pypi.url, PINS, exception("vulnerability", named, YESTERDAY))
    assert expired.returncode == 1
    assert f"exception expired on {YESTERDAY}" in expired.stderr


def test_withdrawn_advisories_and_other_packages_do_not_count(
    pypi: FakePyPI, tmp_path: Path
) -> None:
    withdrawn = {**ADVISORY, "withdrawn": "2026-01-02T00:00:00Z"}
    pypi.projects = {"web-lib": {"1.0.0": [withdrawn]}, "other": {"2.0": []}}
    result = run_audit(
        tmp_path, pypi.url, PINS, exception("vulnerability", ADVISORY["id"], TOMORROW, "other")
    )
    assert result.returncode == 0, result.stderr
    assert "unused exception (remove it): vulnerability other GHSA-aaaa-bbbb-cccc" in result.stdout


def test_without_release_documents_the_latest_release_is_audited_from_its_project(
    pypi: FakePyPI, tmp_path: Path
) -> None:
    pypi.per_release = False
    pypi.projects = {"web-lib": {"0.9.0": [], "1.0.0": [ADVISORY]}, "other": {"2.0": []}}
    result = run_audit(tmp_path, pypi.url, PINS)
    assert result.returncode == 1
    assert "web-lib==1.0.0: GHSA-aaaa-bbbb-cccc" in result.stderr
    assert "2 as their project's latest release" in result.stdout


def test_an_older_pin_that_cannot_be_audited_is_a_warning_or_with_require_audited_a_failure(
    pypi: FakePyPI, tmp_path: Path
) -> None:
    pypi.per_release = False
    pypi.projects = {"web-lib": {"1.0.0": [], "1.1.0": []}, "other": {"2.0": []}}
    warned = run_audit(tmp_path, pypi.url, PINS)
    assert warned.returncode == 0, warned.stderr
    assert "warning: web-lib==1.0.0: unaudited" in warned.stdout

    strict = run_audit(tmp_path, pypi.url, PINS, extra=["--require-audited"])
    assert strict.returncode == 1
    assert "web-lib==1.0.0: unaudited" in strict.stderr

    accepted = run_audit(
        tmp_path,
        pypi.url,
        PINS,
        exception("unaudited", "1.0.0", TOMORROW),
        extra=["--require-audited"],
    )
    assert accepted.returncode == 0, accepted.stderr


def test_a_pin_pypi_does_not_know_fails(pypi: FakePyPI, tmp_path: Path) -> None:
    pypi.projects = {"web-lib": {"1.0.0": []}, "other": {"2.1": []}}
    result = run_audit(tmp_path, pypi.url, PINS)
    assert result.returncode == 1
    assert "other==2.0: PyPI has no such release" in result.stderr


def test_an_unreachable_index_fails_after_retries(tmp_path: Path) -> None:
    result = run_audit(tmp_path, f"http://127.0.0.1:{free_port()}/pypi", PINS)
    assert result.returncode == 2
    assert "PyPI could not be reached for 2 of 2 pins after 4 attempts" in result.stderr
