"""The load host's side of the cluster: Meta's Graph API (the simulator's app, served on
the load host's address), signed webhook deliveries sent at a steady rate and sent
again until accepted (as Meta does), and widget visitors holding sockets that reconnect
after the last message they saw.

The deliveries are built, signed and sent by ``bench/load.py`` (``build_requests``,
``Connection``, ``fire``), the visitors' tokens minted by ``bench/realtime_clients.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from cybergine.channels.webchat.api import PER_VISITOR
from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.channels.whatsapp.simulator.webhook_retries import WebhookRetries
from load import WEBHOOK_PATH, Connection, build_requests, display_number, fire
from realtime_clients import ORIGIN, mint_tokens

__all__ = [
    "ORIGIN",
    "STATUSES_PER_REPLY",
    "WEBHOOK_PATH",
    "Deliveries",
    "Simulator",
    "Visitor",
    "Visitors",
    "display_number",
    "mint_tokens",
]


# A reply the customer reads comes back as three status webhooks: sent, delivered, read.
STATUSES_PER_REPLY = 3
# Meta's schedule of tries (a second, doubling), bounded so that a soak ends: a status
# refused while a host is down is tried again for up to five minutes.
STATUS_RETRIES = WebhookRetries(first_seconds=1.0, longest_seconds=16.0, for_seconds=300.0)


class Simulator:
    """``GraphSimulator``'s app served by uvicorn on ``address`` in a thread (its own
    ``with`` block binds 127.0.0.1, which the workers on other hosts cannot reach).

    Given ``webhook_url`` and ``app_secret``, it reports every reply's statuses there as
    Meta does (sent, delivered, read), so the webhook traffic has Meta's mix."""

    def __init__(
        self,
        address: str,
        port: int = 8080,
        *,
        webhook_url: str | None = None,
        app_secret: str | None = None,
    ) -> None:
        self.sim = GraphSimulator(
            webhook_url=webhook_url,
            app_secret=app_secret,
            auto_read=True,
            webhook_retries=STATUS_RETRIES,
        )
        self.address, self.port = address, port
        config = uvicorn.Config(
            self.sim.app, host=address, port=port, log_config=None, access_log=False,
            lifespan="on", timeout_graceful_shutdown=2,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="graph-sim", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.port}/{self.sim.version}"

    def __enter__(self) -> Simulator:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("the Graph API simulator did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Deliveries:
    """Signed deliveries, one new customer each, at ``rate``/s through the balancer,
    until ``stop`` (or ``limit``); every one answered other than 2xx is sent again, the
    same bytes (the same message id), until accepted or ``attempts`` runs out."""

    lb: tuple[str, int]
    phone_number_id: str
    secret: str
    from_base: int
    rate: float
    limit: int = 200_000
    attempts: int = 30
    concurrency: int = 16
    statuses: dict[int, list[int]] = field(default_factory=dict)  # k: statuses in order
    # Each delivery's first try: (when, monotonic; how long, s; its answer's status, -1: none)
    first_tries: list[tuple[float, float, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0
    started_at: float | None = None  # monotonic: the first and the last send
    stopped_at: float | None = None

    def spec(self) -> dict[str, Any]:
        return {
            "phone_number_id": self.phone_number_id,
            "from_base": self.from_base,
            "display_phone_number": display_number(self.phone_number_id),
            "app_secret": self.secret,
            "path": WEBHOOK_PATH,
            "targets": [list(self.lb)],
        }

    def wa_id(self, k: int) -> str:
        return str(self.from_base + k)

    @property
    def accepted(self) -> set[int]:
        return {k for k, s in self.statuses.items() if s and 200 <= s[-1] < 300}

    async def _run(self) -> None:
        spec = self.spec()
        conns = [[Connection(*self.lb)] for _ in range(self.concurrency)]
        requests: dict[int, bytes] = {}
        self.started_at, schedule = time.monotonic(), time.perf_counter()
        while not self.stop.is_set() and self.sent < self.limit:
            # Open loop: each chunk is due at its place in the schedule, not when the last
            # chunk's slowest answer came, so slow answers do not lower the rate.
            tick = schedule + self.sent / self.rate
            wall = time.monotonic() - (time.perf_counter() - tick)
            chunk = build_requests(spec, self.sent, max(1, int(self.rate)))
            first = self.sent
            self.sent += len(chunk)
            at, latency, status, problems = await fire(chunk, conns, tick, self.rate)
            for i, request in enumerate(chunk):
                requests[first + i] = request[0]
                self.statuses.setdefault(first + i, []).append(status[i])
                self.first_tries.append((wall + at[i], latency[i], status[i]))
            self.problems += problems[:5]
        self.stopped_at = time.monotonic()
        # Meta's redelivery: the same request again, until a 2xx.
        for _ in range(self.attempts):
            missing = sorted(set(requests) - self.accepted)
            if not missing:
                break
            await asyncio.sleep(0.5)
            _, _, status, problems = await fire(
                [[requests[k]] for k in missing], conns, time.perf_counter(), None
            )
            for k, s in zip(missing, status, strict=True):
                self.statuses[k].append(s)
            self.problems += problems[:5]
        for row in conns:
            for c in row:
                c.close()

    def thread(self) -> threading.Thread:
        return threading.Thread(target=lambda: asyncio.run(self._run()), name="deliveries")


@dataclass
class Visitor:
    token: str
    received: list[str] = field(default_factory=list)  # message ids, as the socket gave them
    servers: list[str] = field(default_factory=list)  # the web host of each socket opened
    closes: list[int | None] = field(default_factory=list)
    sent: int = 0
    cursor: str | None = None
    opened_at: list[float] = field(default_factory=list)
    closed_at: list[float] = field(default_factory=list)


# A writing visitor's pace: a fifth under the widget's limit per visitor, so a person
# typing fast is never refused (the soak counts every refusal).
WRITE_EVERY_SECONDS = 1.25 * PER_VISITOR.seconds / PER_VISITOR.maximum


@dataclass
class Visitors:
    """Widget visitors, each with a socket through the balancer that reopens (with the
    last message seen as ``after``) whenever it closes; the first ``len(addresses)`` of
    them also write, each from an address of its own, a message every ``every`` s (the
    assistant answers it: a worker writes, the web host pushes). A refused message
    (429) waits for its ``Retry-After``, as the widget does, and is counted."""

    lb_url: str
    tokens: list[str]
    addresses: list[str] = field(default_factory=list)  # one per writing visitor
    every: float = WRITE_EVERY_SECONDS
    max_opens: int = 50
    refused: int = 0
    visitors: list[Visitor] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    stop_writing: threading.Event = field(default_factory=threading.Event)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.visitors = [Visitor(t) for t in self.tokens]

    async def _socket(self, v: Visitor) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

        base = self.lb_url.replace("http://", "ws://") + "/widget/v1/socket"
        for _ in range(self.max_opens):
            if self.stop.is_set():
                return
            url = f"{base}?token={v.token}" + (f"&after={v.cursor}" if v.cursor else "")
            try:
                async with connect(
                    url, origin=ORIGIN, ping_interval=None, open_timeout=10,  # type: ignore[arg-type]
                    close_timeout=2, proxy=None,
                ) as ws:  # fmt: skip
                    v.servers.append(str(ws.response.headers.get("X-Cluster-Server")))
                    v.opened_at.append(time.monotonic())
                    pinger = asyncio.create_task(self._ping(ws))
                    try:
                        async for raw in ws:
                            frame = json.loads(raw)
                            if frame.get("type") == "message":
                                v.received.append(frame["message"]["id"])
                                v.cursor = frame["message"]["id"]
                            if self.stop.is_set():
                                break
                    finally:
                        pinger.cancel()
                    v.closes.append(ws.close_code)
            except ConnectionClosed as exc:
                v.closes.append(exc.rcvd.code if exc.rcvd else None)
            except (OSError, TimeoutError, InvalidStatus, WebSocketException) as exc:
                self.problems.append(f"open: {type(exc).__name__}: {exc}"[:200])
            if not self.stop.is_set():
                v.closed_at.append(time.monotonic())
                await asyncio.sleep(0.2 + 0.3 * secrets.randbelow(100) / 100)  # the widget's jitter

    @staticmethod
    async def _ping(ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(5)
                await ws.send('{"type":"ping"}')

    async def _writer(self, v: Visitor, address: str) -> None:
        transport = httpx.AsyncHTTPTransport(local_address=address)
        async with httpx.AsyncClient(
            base_url=self.lb_url, timeout=10, transport=transport
        ) as client:
            while not self.stop_writing.is_set():
                await self._write(v, client)
                await asyncio.sleep(self.every)

    async def _write(self, v: Visitor, client: httpx.AsyncClient) -> None:
        body = {"text": "How long does delivery usually take?", "client_id": secrets.token_hex(8)}
        headers = {"Authorization": f"Bearer {v.token}", "Origin": ORIGIN}
        for _ in range(40):  # the same client id again until accepted
            wait = 0.5
            try:
                answer = await client.post("/widget/v1/messages", json=body, headers=headers)
                if answer.status_code < 300:
                    v.sent += 1
                    return
                if answer.status_code == 429:
                    self.refused += 1
                    wait = min(float(answer.headers.get("retry-after", "1")), 30.0)
            except httpx.TransportError:
                pass
            await asyncio.sleep(wait)

    async def _run(self) -> None:
        writers = zip(self.visitors, self.addresses, strict=False)
        await asyncio.gather(
            *(self._socket(v) for v in self.visitors),
            *(self._writer(v, address) for v, address in writers),
        )

    def thread(self) -> threading.Thread:
        return threading.Thread(target=lambda: asyncio.run(self._run()), name="visitors")

    def history(self, v: Visitor) -> list[str]:
        """Every message of the visitor's conversation, asked afresh."""
        answer = httpx.get(
            f"{self.lb_url}/widget/v1/events",
            headers={"Authorization": f"Bearer {v.token}", "Origin": ORIGIN},
            timeout=30,
        )
        answer.raise_for_status()
        return [e["message"]["id"] for e in answer.json()["events"] if e["type"] == "message"]
