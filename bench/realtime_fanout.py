"""The realtime bench's second phase: fan-out latency, from a message written to the
database to every visitor's socket that should hear of it, across two web processes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from live_platform import Platform
from load import Cpu, CpuMonitor, Latencies
from realtime_clients import (
    ORIGIN,
    PING_SECONDS,
    POSTGRES,
    SELF,
    WEB_A,
    WEB_B,
    mint_tokens,
    wait_idle,
)

# --- phase 2: fan-out latency -----------------------------------------------------------


@dataclass
class Guest:
    token: str
    customer_id: uuid.UUID
    source: str  # the local address its HTTP requests come from (a browser of its own)
    conversation_id: str = ""


@dataclass
class FanOut:
    label: str
    kind: str
    n: int
    errors: int
    missing: int
    duplicates: int
    early: int  # frames that arrived before the writer's HTTP response
    from_response: Latencies
    from_request: Latencies
    http: Latencies
    cpu: Cpu


class Held:
    """The visitors' sockets on one web process, and when each message frame arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.duplicates = 0
        self.sockets: list[Any] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, port: int, guests: list[Guest], deflate: bool) -> None:
        from websockets.asyncio.client import connect

        gate = asyncio.Semaphore(16)

        async def one(guest: Guest) -> None:
            ready = asyncio.Event()
            async with gate:
                ws = await connect(
                    f"ws://127.0.0.1:{port}/widget/v1/socket?token={guest.token}",
                    origin=ORIGIN,  # type: ignore[arg-type]
                    compression="deflate" if deflate else None,
                    ping_interval=None,
                    open_timeout=30,
                    proxy=None,
                )
            self.sockets.append(ws)
            self.tasks.append(asyncio.create_task(self._read(ws, ready)))
            self.tasks.append(asyncio.create_task(self._ping(ws)))
            # The server sends the history, then where the conversation stands: caught up.
            await asyncio.wait_for(ready.wait(), 30)

        await asyncio.gather(*(one(guest) for guest in guests))

    async def _read(self, ws: Any, ready: asyncio.Event) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                if frame.get("type") == "message":
                    message_id = frame["message"]["id"]
                    if message_id in self.arrived:
                        self.duplicates += 1
                        continue
                    self.arrived[message_id] = now
                    waiter = self.waiters.pop(message_id, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(now)
                elif frame.get("type") == "state":
                    ready.set()

    @staticmethod
    async def _ping(ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(PING_SECONDS)
                await ws.send('{"type":"ping"}')

    async def wait_for(self, message_id: str, seconds: float) -> float | None:
        if message_id in self.arrived:
            return self.arrived[message_id]
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[message_id] = waiter
        try:
            return await asyncio.wait_for(waiter, seconds)
        except TimeoutError:
            return None

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Writer:
    """Commits messages through web process A: as the visitor (each from its own address,
    as browsers would, so the per-IP limit of the widget API applies as in production), or
    as an agent through the API."""

    def __init__(self, port: int, api_key: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.agent = httpx.AsyncClient(
            base_url=self.base, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        )
        self.visitor_clients: dict[str, httpx.AsyncClient] = {}

    def _visitor_client(self, guest: Guest) -> httpx.AsyncClient:
        client = self.visitor_clients.get(guest.source)
        if client is None:
            client = self.visitor_clients[guest.source] = httpx.AsyncClient(
                base_url=self.base,
                transport=httpx.AsyncHTTPTransport(local_address=guest.source),
                headers={"Origin": ORIGIN},
                timeout=30,
            )
        return client

    async def visitor(self, guest: Guest, text: str) -> tuple[int, str]:
        response = await self._visitor_client(guest).post(
            "/widget/v1/messages",
            json={"text": text, "client_id": secrets.token_hex(8)},
            headers={"Authorization": f"Bearer {guest.token}"},
        )
        if response.status_code != 202:
            return response.status_code, response.text[:200]
        return 202, str(response.json()["message"]["id"])

    async def agent_message(self, guest: Guest, text: str) -> tuple[int, str]:
        response = await self.agent.post(
            f"/api/v1/conversations/{guest.conversation_id}/messages", json={"text": text}
        )
        if response.status_code != 202:
            return response.status_code, response.text[:200]
        return 202, str(response.json()["id"])

    async def send(self, kind: str, guest: Guest, text: str) -> tuple[int, str]:
        if kind == "visitor":
            return await self.visitor(guest, text)
        return await self.agent_message(guest, text)

    async def close(self) -> None:
        await self.agent.aclose()
        for client in self.visitor_clients.values():
            await client.aclose()


async def conversations_of(writer: Writer, guests: list[Guest]) -> None:
    by_customer = {str(g.customer_id): g for g in guests}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"channel": "webchat", "limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = await writer.agent.get("/api/v1/conversations", params=params)
        response.raise_for_status()
        page = response.json()
        for item in page["items"]:
            guest = by_customer.get(item["customer"]["id"])
            if guest is not None:
                guest.conversation_id = item["id"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    missing = sum(1 for g in guests if not g.conversation_id)
    if missing:
        raise SystemExit(f"{missing} visitors have no conversation")


async def measure_row(
    *,
    label: str,
    kind: str,
    socket_port: int,
    writer: Writer,
    guests: list[Guest],
    warmup: list[Guest],
    args: argparse.Namespace,
    cpu_groups: dict[str, Any],
) -> FanOut:
    held = Held()
    await held.open(socket_port, [*warmup, *guests], deflate=not args.no_deflate)
    try:
        for guest in warmup:  # one at a time, not measured
            status, message_id = await writer.send(kind, guest, "warm-up")
            if status == 202:
                await held.wait_for(message_id, 10)

        samples: list[tuple[float, float, float, bool]] = []
        errors: list[str] = []
        missing = 0

        async def one(guest: Guest, k: int) -> None:
            nonlocal missing
            t0 = time.perf_counter()
            status, message_id = await writer.send(kind, guest, f"{kind} message {k}")
            t1 = time.perf_counter()
            if status != 202:
                errors.append(f"{status}: {message_id}")
                return
            arrived = await held.wait_for(message_id, args.frame_timeout)
            if arrived is None:
                missing += 1
                return
            samples.append((arrived - t0, arrived - t1, t1 - t0, arrived < t1))

        monitor = CpuMonitor(cpu_groups)
        monitor.start()
        started = time.perf_counter()
        tasks = []
        for k, guest in enumerate(guests):
            await asyncio.sleep(max(0.0, started + k / args.rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(guest, k)))
        await asyncio.gather(*tasks)
        cpu = await asyncio.get_running_loop().run_in_executor(None, monitor.stop)
    finally:
        await held.close()
    if errors:
        print(f"{label}, {kind}: {len(errors)} errors, first: {errors[:3]}", file=sys.stderr)
    return FanOut(
        label=label,
        kind=kind,
        n=len(guests),
        errors=len(errors),
        missing=missing,
        duplicates=held.duplicates,
        early=sum(1 for s in samples if s[3]),
        from_response=Latencies.of([s[1] for s in samples]),
        from_request=Latencies.of([s[0] for s in samples]),
        http=Latencies.of([s[2] for s in samples]),
        cpu=cpu,
    )


async def run_fanout_async(
    platform: Platform, api_key: str, guests: list[Guest], warmup: list[Guest], args: Any
) -> list[FanOut]:
    (proc_a, port_a), (proc_b, port_b) = platform.web
    writer = Writer(port_a, api_key)
    try:
        # Each visitor's first message opens its conversation (through A).
        gate = asyncio.Semaphore(8)

        async def hello(guest: Guest) -> None:
            async with gate:
                status, detail = await writer.visitor(guest, "hi")
                if status != 202:
                    raise SystemExit(f"POST /widget/v1/messages: {status} {detail}")

        await asyncio.gather(*(hello(g) for g in [*warmup, *guests]))
        await conversations_of(writer, [*warmup, *guests])
        if not args.no_analyze:
            # Statistics, as autovacuum would gather them on a live database: on tables it
            # has not analysed yet, the widget's history query is planned as a nested loop
            # over every message of the organisation (see the note printed with the table).
            await asyncio.to_thread(platform.sql, "ANALYZE")

        cpu_groups = {
            WEB_A: lambda: [proc_a.pid],
            WEB_B: lambda: [proc_b.pid],
            POSTGRES: platform.postgres_pids,
            SELF: lambda: [os.getpid()],
        }
        rows = []
        for kind in ("visitor", "agent"):
            for label, port in (("A -> B", port_b), ("A -> A", port_a)):
                # The previous row's sockets closing (and what the servers log) is over.
                await asyncio.to_thread(wait_idle, [proc_a.pid, proc_b.pid])
                rows.append(
                    await measure_row(
                        label=label,
                        kind=kind,
                        socket_port=port,
                        writer=writer,
                        guests=guests,
                        warmup=warmup,
                        args=args,
                        cpu_groups=cpu_groups,
                    )
                )
        return rows
    finally:
        await writer.close()


def run_fanout(
    platform: Platform, api_key: str, widget_key: str, args: argparse.Namespace
) -> list[FanOut]:
    import uvloop

    minted = mint_tokens(platform.assistant_id, widget_key, args.visitors + 10)
    # One loopback address per visitor: 127.0.1.2, 127.0.1.3, ... (all of 127/8 is local).
    guests = [
        Guest(token, customer, f"127.0.{1 + k // 250}.{2 + k % 250}")
        for k, (token, customer) in enumerate(minted)
    ]
    return uvloop.run(
        run_fanout_async(platform, api_key, guests[10:], guests[:10], args),
    )
