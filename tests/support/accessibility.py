"""Accessibility checks for the browser tests: axe-core (vendored from npm, see
``tests/support/vendor/README.md``) run inside a Playwright page, plus what axe cannot
judge from one snapshot: a page that scrolls sideways at phone width, and errors in the
browser's console.

axe is evaluated through the DevTools protocol (``page.evaluate``), which the page's
Content-Security-Policy does not govern: the page under test keeps its real CSP, so a
script the policy refuses still shows up as a console error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Page

AXE_CORE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
# The impacts a page must not have; "moderate" and "minor" are reported by axe too, and
# left to review rather than failing the build.
BLOCKING_IMPACTS = frozenset({"serious", "critical"})
# WCAG 2.1 A and AA, and axe's best practices (landmarks, one h1, headings in order).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


# Installed in a browser context before any script of its pages runs: counts the page's
# fetch and XMLHttpRequest calls under way (HTMX sends XHR, the API reference's Swagger UI
# fetches its document) and when the last one began or ended. Server-Sent Events are not
# counted: the inbox keeps one open for as long as it is shown.
NETWORK_WATCH_SCRIPT = """
(() => {
  const network = { pending: 0, last: performance.now() };
  window.__cybergineNetwork = network;
  const begin = () => { network.pending += 1; network.last = performance.now(); };
  const end = () => { network.pending -= 1; network.last = performance.now(); };
  const fetch = window.fetch;
  window.fetch = function (...args) {
    begin();
    return fetch.apply(this, args).finally(end);
  };
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (...args) {
    begin();
    this.addEventListener("loadend", end, { once: true });
    return send.apply(this, args);
  };
})();
"""
# Quiet for this long after the last request ended: what a script does with an answer it
# got (Swagger UI renders the operations) is done by then. Playwright's "networkidle"
# waits 500 ms after every page, which for a walk of forty pages is most of its time.
QUIET_MS = 100


def wait_until_quiet(page: Page) -> None:
    """Once the page has loaded: waits until none of its requests is under way and none
    began or ended in the last ``QUIET_MS``. The page's context must have
    ``NETWORK_WATCH_SCRIPT`` installed (``context.add_init_script``)."""
    page.wait_for_function(
        """(quiet) => {
            const network = window.__cybergineNetwork;
            return network.pending === 0 && performance.now() - network.last >= quiet;
        }""",
        arg=QUIET_MS,
    )


@cache
def _axe_source() -> str:
    return AXE_CORE.read_text(encoding="utf-8")


def axe_violations(page: Page, *, within: str | None = None) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now, of every impact; ``within``: a CSS
    selector of the part to check (an embedded widget on a page that is not ours)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source())
    result: dict[str, Any] = page.evaluate(
        """async ([tags, within]) => {
            const result = await window.axe.run(within ? { include: [within] } : document, {
                runOnly: { type: "tag", values: tags },
                resultTypes: ["violations"],
            });
            return { violations: result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => ({
                    target: n.target.join(" "), summary: n.failureSummary })),
            })) };
        }""",
        [AXE_TAGS, within],
    )
    violations: list[dict[str, Any]] = result["violations"]
    # axe leaves an empty style attribute on elements it measured; HTMX's next swap would
    # copy it into the page, and the CSP would then refuse it (a console error the page
    # itself never causes).
    page.evaluate(
        "() => document.querySelectorAll('[style=\"\"]').forEach((e) => e.removeAttribute('style'))"
    )
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']}")
        for node in violation["nodes"][:5]:
            summary = " ".join((node["summary"] or "").split())
            lines.append(f"    {node['target']}: {summary}")
    return "\n".join(lines)


def assert_accessible(page: Page, *, where: str = "", within: str | None = None) -> None:
    """No serious or critical axe violation on the page (or the part ``within``) as it is now."""
    blocking = [v for v in axe_violations(page, within=within) if v["impact"] in BLOCKING_IMPACTS]
    label = where or page.url
    assert not blocking, f"axe finds on {label}:\n{describe(blocking)}"


def assert_fits_and_accessible(page: Page, where: str) -> None:
    """The page as a person sees it now: no serious axe finding, nothing to scroll
    sideways."""
    assert_accessible(page, where=where)
    assert horizontal_overflow(page) == 0, f"{where} scrolls sideways"


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than its viewport (0: nothing to scroll
    sideways to)."""
    overflow: int = page.evaluate(
        "() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth)"
    )
    return overflow


@contextmanager
def console_errors(page: Page) -> Iterator[list[str]]:
    """Collects the console's errors (CSP refusals and uncaught exceptions among them)
    while the block runs."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    def on_page_error(error: Exception) -> None:
        errors.append(f"uncaught: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    try:
        yield errors
    finally:
        page.remove_listener("console", on_console)
        page.remove_listener("pageerror", on_page_error)
