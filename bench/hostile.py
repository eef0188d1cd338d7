"""Hostile uploads against a live `cybergine serve`: what each costs, and what other tenants
feel while they are processed.

Everything runs on this machine: one ``cybergine serve`` on an embedded PostgreSQL in a
temporary directory (its in-process worker answers the widget), the extraction settings
at their defaults unless given. Two organisations: A uploads, B is "another tenant".
It prints:

(a) for each file of the hostile corpus (``tests/support/hostile_files.py``, built in
    memory), uploaded alone by A: the answer (status, problem type or limit), the time to
    the answer, the time until the last extraction process ended (both from the request's
    start), and the peak RSS growth of any process (the web process above its RSS before
    the upload; an extraction child above the fork server it was forked from). Baseline
    in the same run: a small real HTML page and a long real PDF (300 pages of text).
    Goals: answer <= 5 s, extraction ended <= the time limit, growth <= 256 MiB.
(b) p50/p99 of B's sign-in (``POST /login``, an argon2 check), knowledge search
    (``POST /api/v1/knowledge/search``) and widget reply (a visitor's question, ``POST
    /widget/v1/messages``, until the assistant's answer arrives by long poll), measured
    unloaded, then while A keeps six copies of the CPU-bomb PDF in flight (each re-sent as
    soon as it is answered; after a 429, once its Retry-After has passed, as the API asks
    of every client), then likewise with the corpus file whose extraction took
    longest in (a). Goal: loaded p99 within 2x of unloaded p99.

Usage: .venv/bin/python bench/hostile.py [--seconds 30] [--uploaders 6]
       [--embeddings local|none] [--extraction-timeout 60] [--extraction-concurrency N]
       [--skip-corpus] [--skip-load]
The defaults finish in about five minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import os
import platform as host
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from load import Latencies, Processes, run_cli, tail
from startup import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the corpus is built by the tests' own module

from tests.support.hostile_files import HostileDocument, cpu_bomb_pdf, hostile_documents  # noqa: E402
from tests.support.process_memory import (  # noqa: E402
    MIB,
    MemoryWatch,
    children_of,
    fork_servers,
)
from tests.support.slow_documents import long_pdf  # noqa: E402

BIN = Path(sys.executable).parent
ORIGIN = "https://shop.example"
PASSWORD = "bench password " + secrets.token_hex(8)
GOAL_ANSWER_S = 5.0
GOAL_GROWTH_MIB = 256.0
GOAL_RATIO = 2.0
QA_PAIRS = [
    ("What are your opening hours?", "We are open Monday to Friday, from 9:00 to 17:00."),
    ("How long does delivery take?", "Standard delivery takes two to four working days."),
    ("How do I return an item?", "Start a return from your order page within 30 days."),
    ("Do you ship internationally?", "Yes, we ship to every country in the European Union."),
]
QUESTIONS = ["When are you open?", "How long is delivery?", "How can I return something?"]
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
CARE_PAGE = HostileDocument(
    "baseline: HTML page",
    "care.html",
    "text/html",
    b"<html><head><title>Care guide</title></head><body><h1>Washing</h1>"
    b"<p>Wash linen at 40 degrees, inside out.</p></body></html>",
    "baseline",
)


# --- the platform ------------------------------------------------------------------------


@dataclass
class Tenant:
    email: str
    api_key: str
    widget_key: str = ""


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    env: dict[str, str]

    def cli(self, *args: str) -> str:
        return run_cli(self.env, *args)

    def tenant(self, name: str) -> Tenant:
        import json

        email = f"{name.lower()}-{secrets.token_hex(4)}@example.com"
        out = self.cli("org", "create", name, "--owner-email", email, "--owner-password", PASSWORD)
        return Tenant(email=email, api_key=json.loads(out.splitlines()[0])["api_key"])

    def api(self, tenant: Tenant, timeout: float = 120) -> httpx.Client:
        headers = {"Authorization": f"Bearer {tenant.api_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


def start_server(processes: Processes, workdir: Path, args: argparse.Namespace) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYBERGINE_")}
    env.update(
        CYBERGINE_DATA_DIR=str(workdir / "data"),
        CYBERGINE_LOG_LEVEL="WARNING",
        CYBERGINE_EMBEDDINGS=args.embeddings,
        CYBERGINE_EXTRACTION_TIMEOUT_SECONDS=str(args.extraction_timeout),
    )
    if args.extraction_concurrency:
        env["CYBERGINE_EXTRACTION_CONCURRENCY"] = str(args.extraction_concurrency)
    port = free_port()
    process = processes.start(
        "serve", [str(BIN / "cybergine"), "serve", "--host", "127.0.0.1", "--port", str(port)], env
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process, timeout=180)
    except SystemExit:
        print(tail(processes.log_of(process)), file=sys.stderr)
        raise
    return Server(process, f"http://127.0.0.1:{port}", env)


def prepare_other_tenant(server: Server) -> Tenant:
    """B: an assistant answering on the widget from ORIGIN, and Q&A pairs, indexed."""
    tenant = server.tenant("Other")
    with server.api(tenant) as api:
        assistant = api.post("/api/v1/assistants", json={"name": "B", "allowed_origins": [ORIGIN]})
        assert assistant.status_code < 300, assistant.text
        tenant.widget_key = assistant.json()["widget_key"]
        for question, answer in QA_PAIRS:
            made = api.post("/api/v1/knowledge/qa", json={"question": question, "answer": answer})
            assert made.status_code < 300, made.text
        deadline = time.monotonic() + 180
        while True:
            items = api.get("/api/v1/knowledge/qa", params={"limit": 100}).json()["items"]
            if all(item["status"] == "ready" for item in items):
                return tenant
            if time.monotonic() > deadline:
                raise SystemExit(f"B's knowledge base was not indexed: {items}")
            time.sleep(0.2)


# --- (a) the corpus, one file at a time ----------------------------------------------------


@dataclass
class FileCost:
    name: str
    size: int
    status: int
    outcome: str
    answer_s: float
    extraction_s: float
    growth_mib: float
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.status < 500
            and self.answer_s <= GOAL_ANSWER_S
            and self.growth_mib <= GOAL_GROWTH_MIB
        )


def upload(client: httpx.Client, document: HostileDocument) -> httpx.Response:
    return client.post(
        "/api/v1/knowledge/documents",
        files={"file": (document.filename, document.data, document.content_type)},
    )


def outcome_of(response: httpx.Response) -> str:
    if response.status_code < 300:
        return "accepted"
    try:
        body = response.json()
    except ValueError:
        return response.text[:40]
    slug = str(body.get("type", "")).rsplit(":", 1)[-1]
    limit = body.get("limit")
    return f"{slug} ({limit})" if limit else slug


def measure_file(server: Server, api: httpx.Client, document: HostileDocument) -> FileCost:
    pid = server.process.pid
    with MemoryWatch(pid) as memory:
        started = time.monotonic()
        ended: list[float] = []
        response_box: list[httpx.Response] = []
        sender = threading.Thread(target=lambda: response_box.append(upload(api, document)))
        sender.start()
        seen = False
        servers = fork_servers(pid)
        while sender.is_alive() or children_of(servers):
            running = bool(children_of(servers))
            seen = seen or running
            if seen and not running and not ended:
                ended.append(time.monotonic())
            elif running:
                ended.clear()
            time.sleep(0.005)
        sender.join()
        answered = time.monotonic()
    response = response_box[0]
    finished = ended[0] if ended else answered
    return FileCost(
        name=document.name,
        size=len(document.data),
        status=response.status_code,
        outcome=outcome_of(response),
        answer_s=answered - started,
        extraction_s=finished - started,
        growth_mib=memory.growth / MIB,
        retry_after=response.headers.get("retry-after"),
    )


def run_corpus(server: Server, tenant: Tenant) -> list[FileCost]:
    rows = []
    with server.api(tenant) as api:
        upload(api, CARE_PAGE)  # warm: the fork server, the first import of everything
        for document in [CARE_PAGE, long_pdf(), *hostile_documents()]:
            cost = measure_file(server, api, document)
            while cost.status == 429:  # the uploader's share is spent: wait as asked
                time.sleep(float(cost.retry_after or 1))
                cost = measure_file(server, api, document)
            rows.append(cost)
    return rows


# --- (b) another tenant's latency, with and without load ------------------------------------


@dataclass
class Probes:
    label: str
    sign_in: list[float] = field(default_factory=list)
    search: list[float] = field(default_factory=list)
    reply: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    uploads: int = 0
    refused: int = 0


def sign_in_once(server: Server, tenant: Tenant) -> float:
    with httpx.Client(base_url=server.url, timeout=60) as browser:
        page = browser.get("/login")
        match = _CSRF.search(page.text)
        assert match, "no CSRF token on /login"
        form = {"email": tenant.email, "password": PASSWORD, "csrf_token": html.unescape(match[1])}
        started = time.monotonic()
        answer = browser.post("/login", data=form)
        elapsed = time.monotonic() - started
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in: {answer.status_code}")
    return elapsed


def search_once(api: httpx.Client, n: int) -> float:
    started = time.monotonic()
    answer = api.post("/api/v1/knowledge/search", json={"query": QUESTIONS[n % len(QUESTIONS)]})
    elapsed = time.monotonic() - started
    if answer.status_code != 200 or not answer.json()["results"]:
        raise RuntimeError(f"search: {answer.status_code} {answer.text[:100]}")
    return elapsed


def reply_once(server: Server, tenant: Tenant, n: int) -> float:
    # Each visitor from an address of its own, as browsers would (per-IP widget limits).
    source = f"127.0.{1 + n // 250}.{1 + n % 250}"
    transport = httpx.HTTPTransport(local_address=source)
    headers = {"Origin": ORIGIN}
    with httpx.Client(base_url=server.url, transport=transport, headers=headers, timeout=60) as c:
        session = c.post("/widget/v1/session", json={"widget_key": tenant.widget_key})
        if session.status_code != 200:
            raise RuntimeError(f"widget session: {session.status_code} {session.text[:100]}")
        auth = {"Authorization": f"Bearer {session.json()['visitor_token']}"}
        body = {"text": QUESTIONS[n % len(QUESTIONS)], "client_id": secrets.token_hex(8)}
        started = time.monotonic()
        sent = c.post("/widget/v1/messages", json=body, headers=auth)
        if sent.status_code != 202:
            raise RuntimeError(f"widget message: {sent.status_code} {sent.text[:100]}")
        cursor = sent.json()["message"]["id"]
        while time.monotonic() - started < 60:
            polled = c.get("/widget/v1/events", params={"after": cursor}, headers=auth).json()
            cursor = polled.get("cursor") or cursor
            for event in polled["events"]:
                if event["type"] == "message" and event["message"]["sender"] == "assistant":
                    return time.monotonic() - started
    raise RuntimeError("widget reply: no answer in 60 s")


def probe_loop(
    probes: Probes, kind: str, until: float, measure: Callable[[int], float], n0: int
) -> None:
    samples: list[float] = getattr(probes, kind)
    n = n0
    while time.monotonic() < until:
        try:
            samples.append(measure(n))
        except (RuntimeError, httpx.HTTPError) as exc:
            probes.errors.append(f"{kind}: {exc}"[:120])
        n += 1
        time.sleep(0.1)  # a steady trickle, not a load of its own


@dataclass
class Sent:
    answered: int = 0
    refused: int = 0  # 429: the organisation's share of the readers is spent


def uploader(server: Server, tenant: Tenant, document: HostileDocument, until: float) -> Sent:
    """Re-sends the file as soon as it is answered; after a 429, as soon as its
    Retry-After allows (what the API asks of every client)."""
    sent = Sent()
    with server.api(tenant) as api:
        while time.monotonic() < until:
            with contextlib.suppress(httpx.HTTPError):
                answer = upload(api, document)
                if answer.status_code == 429:
                    sent.refused += 1
                    pause = float(answer.headers.get("retry-after", "1"))
                    time.sleep(max(0.0, min(pause, until - time.monotonic())))
            sent.answered += 1
    return sent


def run_probes(
    server: Server,
    other: Tenant,
    label: str,
    seconds: float,
    *,
    load: tuple[Tenant, HostileDocument, int] | None = None,
    first_visitor: int = 0,
) -> Probes:
    probes = Probes(label)
    threads: list[threading.Thread] = []
    counts: list[Sent] = []
    until = time.monotonic() + seconds
    if load is not None:
        uploading, document, copies = load
        for _ in range(copies):
            threads.append(
                threading.Thread(
                    target=lambda: counts.append(uploader(server, uploading, document, until))
                )
            )
        for thread in threads:
            thread.start()
        time.sleep(1)  # the load is on before the first probe
    with server.api(other, timeout=60) as api:
        probers = [
            threading.Thread(
                target=probe_loop,
                args=(probes, "sign_in", until, lambda n: sign_in_once(server, other), 0),
            ),
            threading.Thread(
                target=probe_loop,
                args=(probes, "search", until, lambda n: search_once(api, n), 0),
            ),
            threading.Thread(
                target=probe_loop,
                args=(
                    probes,
                    "reply",
                    until,
                    lambda n: reply_once(server, other, n),
                    first_visitor,
                ),
            ),
        ]
        for thread in probers:
            thread.start()
        for thread in [*probers, *threads]:
            thread.join()
    probes.uploads = sum(sent.answered for sent in counts)
    probes.refused = sum(sent.refused for sent in counts)
    return probes


# --- output ------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_corpus(rows: list[FileCost], args: argparse.Namespace) -> None:
    print(
        f"\n(a) each file uploaded alone (extraction limit {args.extraction_timeout:g} s;"
        f" goals: answer <= {GOAL_ANSWER_S:g} s, extraction ended <= the limit,"
        f" growth <= {GOAL_GROWTH_MIB:g} MiB)"
    )
    print(
        f"  {'file':34} {'size':>9} {'answer':>30} {'answer s':>9} {'extr. s':>8} {'+MiB':>6}  goal"
    )
    for row in rows:
        ok = row.ok and row.extraction_s <= args.extraction_timeout + 1
        mark = "" if row.name.startswith("baseline") or row.name == "pdf-long-text" else verdict(ok)
        print(
            f"  {row.name:34} {row.size / 1024:7.0f}KB {f'{row.status} {row.outcome}':>30}"
            f" {row.answer_s:9.2f} {row.extraction_s:8.2f} {row.growth_mib:6.0f}  {mark}"
        )
    hostile = [r for r in rows if r.name not in (CARE_PAGE.name, "pdf-long-text")]
    worst_answer = max(hostile, key=lambda r: r.answer_s)
    worst_growth = max(hostile, key=lambda r: r.growth_mib)
    print(
        f"  worst: answer {worst_answer.answer_s:.2f} s ({worst_answer.name}),"
        f" growth {worst_growth.growth_mib:.0f} MiB ({worst_growth.name});"
        f" 5xx: {sum(r.status >= 500 for r in hostile)}"
    )


def print_probes(rows: list[Probes]) -> None:
    print(
        f"\n(b) another tenant's requests, p50 / p99 in ms (n); goal: loaded p99 within"
        f" {GOAL_RATIO:g}x of unloaded"
    )
    base = rows[0]
    print(f"  {'':46} {'sign-in':>22} {'search':>22} {'widget reply':>22}")
    for row in rows:
        cells = []
        for kind in ("sign_in", "search", "reply"):
            samples = getattr(row, kind)
            lat = Latencies.of(samples)
            cells.append(f"{lat.p50:7.0f} / {lat.p99:6.0f} ({len(samples):3})")
        load = f", {row.uploads} uploads answered ({row.refused} x 429)" if row is not base else ""
        print(f"  {row.label + load:46} {cells[0]:>22} {cells[1]:>22} {cells[2]:>22}")
        if row is not base:
            ratios = []
            for kind in ("sign_in", "search", "reply"):
                loaded = Latencies.of(getattr(row, kind)).p99
                unloaded = Latencies.of(getattr(base, kind)).p99
                ratio = loaded / unloaded if unloaded else float("nan")
                ratios.append(
                    f"{kind.replace('_', '-')} {ratio:.2f}x {verdict(ratio <= GOAL_RATIO)}"
                )
            print(f"  {'':46} p99 ratios: " + "; ".join(ratios))
        for error in row.errors[:5]:
            print(f"  {'':46} error: {error}")


def main(args: argparse.Namespace) -> None:
    from cybergine import __version__

    started = time.perf_counter()
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="cybergine-bench-hostile-"))
    processes = Processes(workdir)
    corpus: list[FileCost] = []
    probes: list[Probes] = []
    try:
        server = start_server(processes, workdir, args)
        uploading = server.tenant("Uploader")
        other = prepare_other_tenant(server)
        if not args.skip_corpus:
            corpus = run_corpus(server, uploading)
        if not args.skip_load:
            reply_once(server, other, 10_000)  # warm: the reply path, the model
            probes.append(run_probes(server, other, "unloaded", args.seconds))
            bomb = cpu_bomb_pdf()
            probes.append(
                run_probes(
                    server,
                    other,
                    f"{args.uploaders} CPU-bomb PDFs in flight",
                    args.seconds,
                    load=(uploading, bomb, args.uploaders),
                    first_visitor=1_000,
                )
            )
            hostile = [r for r in corpus if r.name not in (CARE_PAGE.name, "pdf-long-text")]
            if hostile:
                slowest = max(hostile, key=lambda r: r.extraction_s).name
                document = next(d for d in hostile_documents() if d.name == slowest)
                probes.append(
                    run_probes(
                        server,
                        other,
                        f"{args.uploaders} x {slowest} in flight",
                        args.seconds,
                        load=(uploading, document, args.uploaders),
                        first_visitor=2_000,
                    )
                )
        logged = processes.log_of(server.process).read_text(errors="replace").splitlines()
        serve_errors = [
            line for line in logged if '"level": "error"' in line or "Traceback" in line
        ]
    finally:
        processes.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    cores = psutil.cpu_count() or 1
    memory = psutil.virtual_memory().total / 2**30
    print(
        f"cybergine {__version__}; {host.processor() or host.machine()}, {cores} cores,"
        f" {memory:.1f} GiB; Python {host.python_version()}; load average before the run"
        f" {load_before[0]:.1f}; one `cybergine serve` (embedded PostgreSQL, in-process"
        f" worker), embeddings {args.embeddings}, extraction limit"
        f" {args.extraction_timeout:g} s, concurrency"
        f" {args.extraction_concurrency or 'default'}, memory limit default"
    )
    if corpus:
        print_corpus(corpus, args)
    if probes:
        print_probes(probes)
    print(f"\nerrors the server logged: {len(serve_errors)}")
    for line in serve_errors[:5]:
        print(f"  {line[:300]}")
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="per latency phase")
    parser.add_argument("--uploaders", type=int, default=6, help="hostile uploads in flight")
    parser.add_argument("--embeddings", choices=("local", "none"), default="local")
    parser.add_argument("--extraction-timeout", type=float, default=60.0)
    parser.add_argument(
        "--extraction-concurrency", type=int, default=0, help="0: the setting's default"
    )
    parser.add_argument("--skip-corpus", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        main(parser.parse_args())
    except KeyboardInterrupt:
        print("interrupted: every process of the run stopped", file=sys.stderr)
        sys.exit(130)
