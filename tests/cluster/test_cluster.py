"""The platform as a cluster of machines losing machines, under load.

Hosts are network namespaces on this machine (``tests/cluster/network.py``): PostgreSQL,
two web hosts (``cybergine serve``), two worker hosts (``cybergine worker``), HAProxy in
front of the web hosts, and a host with Meta's Graph API (the simulator) and the load:
signed webhook deliveries in Meta's mix (a customer's question, then the statuses of its
reply: sent, delivered, read, which the simulator reports as Meta does), and widget
visitors on sockets. Under that load every process of one web host is killed (SIGKILL),
then every process of one worker host, then PostgreSQL restarts. Then: every delivery the
platform accepted is stored once, every question answered once, every status applied,
every socket came back through the other web host without missing a message, and no job
is left running.

Run with ``make test-cluster`` (root, iproute2 and Debian's haproxy).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from cybergine.channels.whatsapp.simulator import GraphSimulator
from tests.cluster.hosts import Cybergine, Haproxy, Postgres, base_env, tail, wait_for
from tests.cluster.network import Network
from tests.cluster.traffic import (
    ORIGIN,
    STATUSES_PER_REPLY,
    WEBHOOK_PATH,
    Deliveries,
    Simulator,
    Visitor,
    Visitors,
    display_number,
    mint_tokens,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

QA = [
    ("What are your opening hours?", "We are open Monday to Friday, from 9:00 to 17:00."),
    ("How long does delivery take?", "Standard delivery takes two to four working days."),
    ("How do I return an item?", "Start a return from your order page within 30 days."),
]
WEB, WORKERS = ["web1", "web2"], ["worker1", "worker2"]
RATE = float(os.environ.get("CLUSTER_RATE", "40"))  # webhook deliveries/s, in all
# With statuses (the default), a question brings its reply's three statuses: a quarter of
# the deliveries are questions. CLUSTER_STATUSES=0: every delivery a question.
STATUSES = os.environ.get("CLUSTER_STATUSES", "1") != "0"
QUESTION_RATE = RATE / (1 + STATUSES_PER_REPLY) if STATUSES else RATE
SOCKETS = int(os.environ.get("CLUSTER_SOCKETS", "6"))
# bench/cluster.py's soak: the sockets that also write, and how long each phase holds.
WRITERS = int(os.environ.get("CLUSTER_WRITERS", str(SOCKETS)))
VISITOR_OCTETS = 101  # each writing visitor's own address on the load host, .101 onwards
HOLD_SECONDS = float(os.environ.get("CLUSTER_HOLD_SECONDS", "0"))
# The workers' niceness (CYBERGINE_WORKER_NICE); unset: the platform's default.
WORKER_NICE = os.environ.get("CLUSTER_WORKER_NICE")
FAULT_WINDOW_SECONDS = 10.0
PHONE_NUMBER_ID = "3000001"
FROM_BASE = 447_000_000_000


def _prerequisites() -> None:
    missing = [tool for tool in ("ip", "haproxy", "runuser") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    if missing:
        pytest.fail(f"the cluster test needs: {', '.join(missing)}")


@pytest.fixture
def net() -> Iterator[Network]:
    _prerequisites()
    network = Network()
    try:
        network.open()
        for host, octet in [
            ("db", 10), ("web1", 11), ("web2", 12), ("worker1", 21), ("worker2", 22),
            ("lb", 5), ("load", 100),
        ]:  # fmt: skip
            network.add_host(host, octet)
        network.add_addresses("load", VISITOR_OCTETS, WRITERS)
        yield network
    finally:
        problems = network.close()
        assert not problems, problems


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cybergine-cluster-"))
    path.chmod(0o755)  # PostgreSQL's user reaches its directory inside
    yield path
    if os.environ.get("CLUSTER_KEEP") is None:
        shutil.rmtree(path, ignore_errors=True)


class Timeline:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.marks: list[tuple[str, float]] = []
        self.faults: list[float] = []  # monotonic

    def mark(self, what: str) -> float:
        at = time.monotonic() - self.start
        self.marks.append((what, at))
        print(f"[cluster {at:6.1f} s] {what}", flush=True)
        return at


def _sql(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        return list(conn.execute(query, params).fetchall())


def test_cluster_survives_losing_a_web_host_a_worker_host_and_the_database(
    net: Network, workdir: Path, key_env: dict[str, str]
) -> None:
    t = Timeline()
    with net.inside("load"):
        _scenario(net, workdir, key_env, t)


def _scenario(net: Network, workdir: Path, key_env: dict[str, str], t: Timeline) -> None:
    pg = Postgres(net, workdir / "db")
    pg.create()
    pg.start()
    pg.bootstrap()
    t.mark("postgres up")
    token, secret = "EAAG" + os.urandom(16).hex(), os.urandom(16).hex()
    hook = f"http://{net.hosts['lb']}{WEBHOOK_PATH}" if STATUSES else None
    with Simulator(net.hosts["load"], webhook_url=hook, app_secret=secret) as graph:
        sim = graph.sim
        sim.add_number(PHONE_NUMBER_ID, token, display_phone_number=display_number(PHONE_NUMBER_ID))
        env = base_env(pg.url(), graph.base_url, net.hosts["lb"], key_env)
        if WORKER_NICE is not None:
            env["CYBERGINE_WORKER_NICE"] = WORKER_NICE
        app = Cybergine(net, workdir, env)
        app.cli("web1", "migrate")
        t.mark("migrated")
        for host in WEB:
            app.serve(host)
        for host in WORKERS:
            app.start(host, "worker")
        lb = Haproxy(net, workdir, WEB)
        lb.start()
        try:
            for host in WEB:
                wait_for(lambda h=host: app.ready(h), 120, f"{host} /readyz 200")
                t.mark(f"{host} ready")
            seen: set[str] = set()

            def both_behind_lb() -> bool:
                try:
                    answer = httpx.get(f"{lb.url}/readyz", timeout=2)
                except httpx.TransportError:
                    return False
                if answer.status_code == 200:
                    seen.add(answer.headers.get("X-Cluster-Server", ""))
                return seen >= set(WEB)

            wait_for(both_behind_lb, 30, "HAProxy sends to both web hosts")
            t.mark("cluster up")
            _under_faults(net, pg, app, lb, sim, token, secret, t)
        except BaseException:
            for name in [*WEB, *WORKERS]:
                print(f"--- {name} log ---\n{tail(app.log(name))}")
            print(f"--- haproxy ---\n{tail(workdir / 'haproxy.log')}")
            print(f"--- postgres ---\n{tail(pg.log)}")
            raise
        finally:
            for host in [*WEB, *WORKERS, "lb"]:
                net.kill_all(host)
            # Stopped, not killed: a killed PostgreSQL leaves its shared memory files in
            # /dev/shm. Killed all the same if the stop fails.
            with contextlib.suppress(Exception):
                pg.stop()
            net.kill_all("db")


def _under_faults(
    net: Network,
    pg: Postgres,
    app: Cybergine,
    lb: Haproxy,
    sim: GraphSimulator,
    token: str,
    secret: str,
    t: Timeline,
) -> None:
    owner = json.loads(
        app.cli(
            "worker1", "org", "create", "Cluster", "--owner-email", "ops@example.com",
            "--owner-password", os.urandom(12).hex(),
        ).splitlines()[0]
    )  # fmt: skip
    api = httpx.Client(
        base_url=lb.url, headers={"Authorization": f"Bearer {owner['api_key']}"}, timeout=30
    )

    def post(path: str, body: dict[str, object]) -> dict[str, object]:
        answer = api.post(path, json=body)
        assert answer.status_code < 300, f"{path}: {answer.status_code} {answer.text[:300]}"
        result: dict[str, object] = answer.json()
        return result

    assistant = post("/api/v1/assistants", {"name": "Cluster", "allowed_origins": [ORIGIN]})
    for question, answer in QA:
        post("/api/v1/knowledge/qa", {"question": question, "answer": answer})
    post(
        "/api/v1/channels/whatsapp",
        {
            "assistant_id": assistant["id"], "phone_number_id": PHONE_NUMBER_ID,
            "waba_id": "102290129340398", "display_phone_number": display_number(PHONE_NUMBER_ID),
            "access_token": token, "app_secret": secret, "send_rate": 1000.0,
        },
    )  # fmt: skip

    def indexed() -> bool:
        items = api.get("/api/v1/knowledge/qa", params={"limit": 100}).json()["items"]
        assert not any(i["status"] == "failed" for i in items), items
        return all(i["status"] == "ready" for i in items)

    wait_for(indexed, 60, "the knowledge base indexed by the workers", every=0.3)
    t.mark("organisation, assistant, knowledge and number ready")

    tokens = [
        tok for tok, _ in mint_tokens(str(assistant["id"]), str(assistant["widget_key"]), SOCKETS)
    ]
    visitors = Visitors(lb.url, tokens, net.more_addresses["load"])
    deliveries = Deliveries(
        (net.hosts["lb"], 80), PHONE_NUMBER_ID, secret, FROM_BASE, QUESTION_RATE
    )
    v_thread, d_thread = visitors.thread(), deliveries.thread()
    v_thread.start()
    wait_for(lambda: all(v.servers for v in visitors.visitors), 30, "every widget socket open")
    on = Counter(v.servers[-1] for v in visitors.visitors)
    assert set(on) == set(WEB), f"sockets not spread over both web hosts: {on}"
    d_thread.start()
    try:
        _faults(net, pg, app, sim, visitors, deliveries, t)
        deliveries.stop.set()
        visitors.stop_writing.set()
        d_thread.join(timeout=60)
        assert not d_thread.is_alive(), "the deliveries did not end"
        _checks(pg, sim, visitors, deliveries, t)
    finally:
        deliveries.stop.set()
        visitors.stop_writing.set()
        visitors.stop.set()
        d_thread.join(timeout=60)
        v_thread.join(timeout=20)


def _replies(sim: GraphSimulator) -> int:
    return len(sim.sent)


def _faults(
    net: Network,
    pg: Postgres,
    app: Cybergine,
    sim: GraphSimulator,
    visitors: Visitors,
    deliveries: Deliveries,
    t: Timeline,
) -> None:
    def progress(more: int, what: str, timeout: float = 45) -> None:
        since = time.monotonic()
        target = _replies(sim) + more
        wait_for(lambda: _replies(sim) >= target, timeout, f"{more} more replies ({what})")
        if HOLD_SECONDS:  # the soak: the load runs on for the phase's length
            wait_for(lambda: time.monotonic() > since + HOLD_SECONDS, HOLD_SECONDS + 1, what, 1)

    progress(20, "warm-up")
    t.mark(f"load running: {deliveries.sent} deliveries, {_replies(sim)} replies")

    # 1. Every process of a web host, SIGKILL: the one holding more sockets.
    lost = Counter(v.servers[-1] for v in visitors.visitors).most_common(1)[0][0]
    other = next(h for h in WEB if h != lost)
    victims = [v for v in visitors.visitors if v.servers[-1] == lost]
    opens = {id(v): len(v.servers) for v in victims}
    killed_at = time.monotonic()
    t.faults.append(killed_at)
    assert net.kill_all(lost)
    app.reap(lost)
    t.mark(f"{lost} killed ({len(victims)} sockets on it)")
    wait_for(
        lambda: all(len(v.servers) > opens[id(v)] for v in victims),
        20,
        f"the sockets of {lost} open again",
    )
    back = [v.opened_at[opens[id(v)]] - killed_at for v in victims]
    t.mark(f"sockets back through {other} after at most {max(back):.2f} s")
    for v in victims:
        assert set(v.servers[opens[id(v)] :]) == {other}, v.servers
    progress(20, f"after losing {lost}")

    # 2. Every process of a worker host, SIGKILL.
    t.faults.append(time.monotonic())
    assert net.kill_all("worker1")
    app.reap("worker1")
    t.mark("worker1 killed")
    progress(20, "after losing worker1")

    # 3. PostgreSQL restarts (fast shutdown: every connection cut).
    t.faults.append(time.monotonic())
    pg.restart()
    t.mark("postgres restarted")
    progress(20, "after the database restarted", timeout=60)
    assert app.alive(other), f"{other} exited"
    assert app.alive("worker2"), "worker2 exited"
    t.mark(f"load stops: {deliveries.sent} deliveries, {_replies(sim)} replies")


def _checks(
    pg: Postgres, sim: GraphSimulator, visitors: Visitors, deliveries: Deliveries, t: Timeline
) -> None:
    url = pg.url()
    accepted = deliveries.accepted
    never = sorted(set(range(deliveries.sent)) - accepted)
    assert not never, (
        f"{len(never)} deliveries never accepted: {[deliveries.statuses[k] for k in never[:5]]}"
    )
    retried = sum(1 for s in deliveries.statuses.values() if len(s) > 1)

    # Every question answered, once (the simulator is the customer's phone).
    wanted = {deliveries.wa_id(k) for k in accepted}

    def answered() -> bool:
        return wanted <= {r.to for r in sim.sent}

    try:
        wait_for(answered, 90 + HOLD_SECONDS, "a reply to every accepted question", every=0.5)
    except AssertionError:
        missing = wanted - {r.to for r in sim.sent}
        raise AssertionError(f"{len(missing)} of {len(wanted)} questions unanswered") from None
    t.mark(f"every question answered ({len(wanted)}; {retried} deliveries were sent again)")

    def settled() -> bool:
        rows = _sql(
            url,
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' OR (status = 'todo'"
            " AND (scheduled_at IS NULL OR scheduled_at <= now()))",
        )
        return rows[0][0] == 0

    wait_for(settled, 60, "no job waiting or running", every=0.5)
    replies = Counter(r.to for r in sim.sent if r.to in wanted)
    twice = {to: n for to, n in replies.items() if n > 1}
    assert not twice, f"{len(twice)} questions answered more than once: {list(twice.items())[:5]}"
    if STATUSES:
        _check_statuses(url, sim, t)

    # Every accepted delivery stored once.
    rows = _sql(
        url,
        "SELECT u.external_id, count(*) FROM messages m"
        " JOIN conversations c ON c.id = m.conversation_id"
        " JOIN customers u ON u.id = c.customer_id"
        " WHERE m.direction = 'inbound' AND u.external_id LIKE %s GROUP BY u.external_id",
        str(FROM_BASE)[:6] + "%",
    )
    stored = {str(wa): int(n) for wa, n in rows}
    assert not [wa for wa in wanted if stored.get(wa) != 1], "accepted deliveries not stored once"
    assert all(n == 1 for n in stored.values()), "a delivery stored twice"
    stuck = _sql(url, "SELECT status, count(*) FROM procrastinate_jobs GROUP BY status")
    statuses = {str(s): int(n) for s, n in stuck}
    assert statuses.get("doing", 0) == 0, statuses
    t.mark(f"stored once each; jobs by status {statuses}")

    # Every socket: nothing missed, nothing twice, by the end.
    for v in visitors.visitors:
        if not v.sent:
            # At a soak's sizes most visitors only listen (CLUSTER_WRITERS of them write):
            # their conversation is empty, so any message on their socket is another's.
            # (Asking for their history would be held by the long poll, having no news.)
            assert v.received == [], f"a listener was sent messages: {v.servers}"
            continue
        history = visitors.history(v)
        assert history, "a visitor who wrote has no messages"

        def complete(v: Visitor = v, history: list[str] = history) -> bool:
            return set(history) <= set(v.received)

        try:
            wait_for(complete, 10, "the socket has every message")
        except AssertionError:
            lost = [m for m in history if m not in set(v.received)]
            raise AssertionError(
                f"{len(lost)} of {len(history)} messages never reached a socket"
                f" (opened on {v.servers}, closes {v.closes})"
            ) from None
        assert len(v.received) == len(set(v.received)), f"a message twice on a socket: {v.servers}"
    sent = sum(v.sent for v in visitors.visitors)
    frames = sum(len(v.received) for v in visitors.visitors)
    t.mark(f"sockets complete: {sent} visitor messages, {frames} message frames")
    # Each writer keeps under its own limit and speaks from its own address.
    assert visitors.refused == 0, f"{visitors.refused} visitor messages refused (429)"
    _acknowledgements(sim, deliveries, t)


def _check_statuses(url: str, sim: GraphSimulator, t: Timeline) -> None:
    """Every reply's statuses delivered (tried again while a host was down) and applied:
    each reply stored as read by its customer, once."""
    replies = sim.sent
    expected = STATUSES_PER_REPLY * len(replies)
    wait_for(
        lambda: len(sim.webhook_deliveries) >= expected,
        330,  # the last refused status may wait out its longest retry
        f"the {expected} status webhooks delivered or given up",
        every=0.5,
    )
    given_up = [d for d in sim.webhook_deliveries if not d.ok]
    assert not given_up, f"{len(given_up)} status webhooks never accepted: {given_up[:2]}"
    rows = _sql(
        url,
        "SELECT status::text, count(*) FROM messages WHERE direction = 'outbound'"
        " AND external_id = ANY(%s) GROUP BY 1",
        [r.wamid for r in replies],
    )
    assert {str(s): int(n) for s, n in rows} == {"read": len(replies)}, rows
    retried = sum(1 for d in sim.webhook_deliveries if d.attempts > 1)
    t.mark(f"every status applied: {len(replies)} replies read ({retried} statuses tried again)")


def _replied(sim: GraphSimulator, deliveries: Deliveries) -> list[tuple[float, float, bool]]:
    """Each question's first try (when it began, monotonic) and how long until the
    simulator took its reply: what the customer waited."""
    wall_minus_monotonic = time.time() - time.monotonic()
    asked = deliveries.first_tries
    customers = {deliveries.wa_id(k): k for k in range(len(asked))}
    replied: dict[int, float] = {}
    for message in sim.sent:
        k = customers.get(message.to)
        if k is not None:
            at = message.at.timestamp() - wall_minus_monotonic
            replied[k] = min(at, replied.get(k, at))
    return [(asked[k][0], at - asked[k][0], True) for k, at in replied.items()]


def _acknowledgements(sim: GraphSimulator, deliveries: Deliveries, t: Timeline) -> None:
    """The webhook rate during the load, and the first tries' acknowledgements (of the
    questions, of the statuses, of all) outside the fault windows: a try counts unless it
    was under way at a fault or in the 10 s after one. A try that got no answer counts as
    never acknowledged."""
    start, stop = deliveries.started_at, deliveries.stopped_at
    assert start is not None
    assert stop is not None
    seconds = stop - start
    questions = [(at, took, status > 0) for at, took, status in deliveries.first_tries]
    statuses = [
        (d.first_try_at, d.first_try_seconds, d.first_status is not None)
        for d in sim.webhook_deliveries
        if d.first_try_at is not None and d.first_try_seconds is not None
    ]
    during = sum(1 for at, _, _ in statuses if start <= at <= stop)
    print(
        f"[cluster] webhook deliveries in the load: {(deliveries.sent + during) / seconds:.1f}/s"
        f" ({deliveries.sent / seconds:.1f}/s questions, {during / seconds:.1f}/s statuses,"
        f" over {seconds:.0f} s)"
    )

    def calm(tries: list[tuple[float, float, bool]]) -> list[float]:
        return sorted(
            took if answered else math.inf
            for at, took, answered in tries
            if not any(at <= f + FAULT_WINDOW_SECONDS and at + took >= f for f in t.faults)
        )

    outside = f"outside the faults and the {FAULT_WINDOW_SECONDS:.0f} s after each"
    for what, latencies in [
        ("questions", calm(questions)),
        ("statuses", calm(statuses)),
        ("all", calm([*questions, *statuses])),
    ]:
        if latencies:
            print(f"[cluster] first acknowledgements {outside}, {what}: {_spread(latencies)}")
    # What the acknowledgements must not be bought with: the customers' wait for replies.
    waits = calm(_replied(sim, deliveries))
    if waits:
        print(f"[cluster] from a question to its reply {outside}: {_spread(waits)}")


def _spread(latencies: list[float]) -> str:
    """``latencies`` sorted: their count, median and 99th percentile."""
    n = len(latencies)
    p50, p99 = latencies[n // 2], latencies[min(n - 1, int(n * 0.99))]
    return f"n={n}, p50 {1000 * p50:.0f} ms, p99 {1000 * p99:.0f} ms"
