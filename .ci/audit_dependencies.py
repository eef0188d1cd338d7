#!/usr/bin/env python3
"""Audit the pinned dependencies (constraints.txt) against PyPI's vulnerability data.

For every ``name==version`` pin, PyPI's JSON API is asked for that release
(``/pypi/<name>/<version>/json``), whose ``vulnerabilities`` list the advisories known to
affect it (from the OSV database; withdrawn ones are ignored). Where an index does not
serve per-release documents (some mirrors and proxies answer them 404), the project's
document is used instead when the pin *is* the project's latest release: PyPI lists that
release's vulnerabilities there. A pin that neither can vouch for is "unaudited".

The audit fails (exit 1) on a vulnerability that no entry of the exceptions file
(``.ci/audit-exceptions.toml``) accepts, and on an exception whose expiry date has passed.
An unaudited pin is listed as a warning; with ``--require-audited`` it fails too unless an
exception accepts it. (Where per-release documents are not served, every upstream release
would otherwise turn a pin that was audited yesterday into a failure today, with nothing
known against it.) It fails with exit 2 when PyPI cannot be reached after retries: an audit
that could not look must not pass. Standard library only, so it runs before anything is
installed.

    python .ci/audit_dependencies.py [--constraints constraints.txt]
        [--exceptions .ci/audit-exceptions.toml] [--index-url https://pypi.org/pypi]
        [--require-audited]
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import datetime
import json
import re
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INDEX = "https://pypi.org/pypi"
ATTEMPTS = 4
TIMEOUT_SECONDS = 20
PARALLEL = 8
# Answers worth asking again: PyPI or the network is having a moment.
RETRYABLE_STATUSES = {429, 500, 502, 503, 504}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)")


class Unreachable(Exception):
    """PyPI did not give an answer for this document, after every retry."""


@dataclass(frozen=True)
class Vulnerability:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    summary: str
    fixed_in: tuple[str, ...]
    link: str

    @property
    def names(self) -> set[str]:
        return {self.id, *self.aliases}


@dataclass(frozen=True)
class Audit:
    package: str
    version: str
    # How it was audited: "release" (its own document), "latest" (the project's document,
    # the pin being its latest release), "unaudited", or "missing" (no such release).
    source: str
    vulnerabilities: tuple[Vulnerability, ...] = ()


@dataclass(frozen=True)
class ExceptionEntry:
    """One entry of the exceptions file: a finding accepted, for a reason, until a date."""

    kind: str  # "vulnerability" or "unaudited"
    package: str
    key: str  # an advisory id, or a pinned version
    reason: str
    expires: datetime.date

    def label(self) -> str:
        return f"{self.kind} {self.package} {self.key}"


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    used: set[ExceptionEntry] = field(default_factory=set)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(constraints: Path) -> list[tuple[str, str]]:
    pins = []
    for line in constraints.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            pins.append((normalise(match.group(1)), match.group(2)))
    return pins


def read_exceptions(path: Path) -> list[ExceptionEntry]:
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text())
    found = []
    for kind, key_name in (("vulnerability", "id"), ("unaudited", "version")):
        for entry in data.get(kind, []):
            missing = {key_name, "package", "reason", "expires"} - entry.keys()
            if missing:
                raise SystemExit(f"{path}: a [[{kind}]] entry lacks {sorted(missing)}: {entry}")
            expires = entry["expires"]
            if not isinstance(expires, datetime.date) or isinstance(expires, datetime.datetime):
                raise SystemExit(f"{path}: expires must be a date (2027-01-31): {entry}")
            if not str(entry["reason"]).strip():
                raise SystemExit(f"{path}: an exception needs a reason: {entry}")
            found.append(
                ExceptionEntry(
                    kind,
                    normalise(entry["package"]),
                    str(entry[key_name]),
                    entry["reason"],
                    expires,
                )
            )
    return found


def fetch(url: str, *, retry_delay: float) -> dict[str, Any] | None:
    """The JSON document at ``url``, None when PyPI says it does not exist (404)."""
    last: Exception | None = None
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(retry_delay * 2 ** (attempt - 1))
        # http(s) only: main() refuses any other scheme for the index.
        request = urllib.request.Request(url, headers={"accept": "application/json"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                document: dict[str, Any] = json.load(response)
                return document
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            if error.code not in RETRYABLE_STATUSES:
                raise Unreachable(f"{url}: HTTP {error.code}") from error
            last = error
        except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as error:
            last = error
    raise Unreachable(f"{url}: {last}")


def _vulnerabilities(
    package: str, version: str, document: dict[str, Any]
) -> tuple[Vulnerability, ...]:
    return tuple(
        Vulnerability(
            package=package,
            version=version,
            id=str(entry.get("id")),
            aliases=tuple(entry.get("aliases") or ()),
            summary=" ".join(str(entry.get("summary") or entry.get("details") or "").split())[:160],
            fixed_in=tuple(entry.get("fixed_in") or ()),
            link=str(entry.get("link") or ""),
        )
        for entry in document.get("vulnerabilities") or ()
        if not entry.get("withdrawn")
    )


def audit_pin(package: str, version: str, index: str, *, retry_delay: float) -> Audit:
    release = fetch(f"{index}/{package}/{version}/json", retry_delay=retry_delay)
    if release is not None:
        return Audit(package, version, "release", _vulnerabilities(package, version, release))
    project = fetch(f"{index}/{package}/json", retry_delay=retry_delay)
    if project is None or version not in (project.get("releases") or {}):
        return Audit(package, version, "missing")
    if project.get("info", {}).get("version") == version:
        return Audit(package, version, "latest", _vulnerabilities(package, version, project))
    return Audit(package, version, "unaudited")


def judge(
    audits: list[Audit],
    exceptions: list[ExceptionEntry],
    today: datetime.date,
    *,
    require_audited: bool = False,
) -> Outcome:
    outcome = Outcome()
    for audit in audits:
        pin = f"{audit.package}=={audit.version}"
        if audit.source == "missing":
            outcome.failures.append(f"{pin}: PyPI has no such release")
        if audit.source == "unaudited":
            accepting = [
                e
                for e in exceptions
                if e.kind == "unaudited" and e.package == audit.package and e.key == audit.version
            ]
            _decide(
                outcome,
                accepting,
                f"{pin}: unaudited (PyPI did not answer for this release, and it is not the "
                "latest)",
                warn_only=not require_audited,
            )
        for vulnerability in audit.vulnerabilities:
            accepting = [
                e
                for e in exceptions
                if e.kind == "vulnerability"
                and e.package == audit.package
                and e.key in vulnerability.names
            ]
            fixed = ", ".join(vulnerability.fixed_in) or "no fixed release yet"
            aliases = f" ({', '.join(vulnerability.aliases)})" if vulnerability.aliases else ""
            _decide(
                outcome,
                accepting,
                f"{pin}: {vulnerability.id}{aliases} {vulnerability.summary} "
                f"[fixed in: {fixed}] {vulnerability.link}".rstrip(),
            )
    for exception in exceptions:
        if exception.expires < today:
            outcome.failures.append(
                f"exception expired on {exception.expires}: {exception.label()} "
                f"({exception.reason})"
            )
    return outcome


def _decide(
    outcome: Outcome, accepting: list[ExceptionEntry], finding: str, *, warn_only: bool = False
) -> None:
    if accepting:
        outcome.used.update(accepting)
        outcome.accepted.append(f"{finding} — accepted until {accepting[0].expires}")
    elif warn_only:
        outcome.warnings.append(finding)
    else:
        outcome.failures.append(finding)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--constraints", type=Path, default=ROOT / "constraints.txt")
    parser.add_argument("--exceptions", type=Path, default=ROOT / ".ci" / "audit-exceptions.toml")
    parser.add_argument("--index-url", default=DEFAULT_INDEX)
    parser.add_argument("--retry-delay", type=float, default=2.0, help="seconds, doubled per retry")
    parser.add_argument(
        "--require-audited",
        action="store_true",
        help="fail on a pin PyPI's data cannot vouch for, unless an exception accepts it",
    )
    args = parser.parse_args(argv)

    pins = read_pins(args.constraints)
    exceptions = read_exceptions(args.exceptions)
    index = args.index_url.rstrip("/")
    if not index.startswith(("https://", "http://")):
        parser.error("--index-url must be an http(s) URL")
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        futures = [
            pool.submit(audit_pin, package, version, index, retry_delay=args.retry_delay)
            for package, version in pins
        ]
        audits, unreachable = [], []
        for future in futures:
            try:
                audits.append(future.result())
            except Unreachable as error:
                unreachable.append(str(error))
    if unreachable:
        print(
            f"dependency audit: FAILED — PyPI could not be reached for {len(unreachable)} of "
            f"{len(pins)} pins after {ATTEMPTS} attempts each; nothing can be vouched for:",
            file=sys.stderr,
        )
        for problem in unreachable[:10]:
            print(f"  {problem}", file=sys.stderr)
        return 2

    today = datetime.date.today()
    outcome = judge(audits, exceptions, today, require_audited=args.require_audited)
    sources = collections.Counter(audit.source for audit in audits)
    print(
        f"dependency audit: {len(pins)} pins of {args.constraints.name} in "
        f"{time.monotonic() - started:.1f} s ({sources['release']} from their release's "
        f"document, {sources['latest']} as their project's latest release, "
        f"{sources['unaudited']} unaudited, {sources['missing']} missing); "
        f"{sum(len(audit.vulnerabilities) for audit in audits)} known vulnerabilities"
    )
    for line in outcome.accepted:
        print(f"  accepted: {line}")
    for line in outcome.warnings:
        print(f"  warning: {line}")
    for exception in exceptions:
        if exception not in outcome.used and exception.expires >= today:
            print(f"  unused exception (remove it): {exception.label()}")
    if outcome.failures:
        print("dependency audit: FAILED", file=sys.stderr)
        for line in outcome.failures:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
