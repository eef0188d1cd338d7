"""Hosts as Linux network namespaces on one machine: each host a namespace with one
interface and its own address, every interface cabled (a veth pair) to a bridge that
lives in a namespace of its own. Nothing is added to the machine's own namespace but
the veth ends while they are moved, so the cluster's traffic never leaves the
namespaces, and two runs (each with its own name prefix) can use the same subnet.

Needs root and iproute2. ``Network.close`` removes everything, whatever happened.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

SUBNET = "10.77.0"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@dataclass
class Network:
    run: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: dict[str, str] = field(default_factory=dict)  # host: address
    more_addresses: dict[str, list[str]] = field(default_factory=dict)  # host: add_addresses
    _links: int = 0

    @property
    def bridge_ns(self) -> str:
        return f"clu{self.run}-net"

    def ns(self, host: str) -> str:
        return f"clu{self.run}-{host}"

    def open(self) -> None:
        ip("netns", "add", self.bridge_ns)
        self.exec_ip(self.bridge_ns, "link", "add", "br0", "type", "bridge")
        self.exec_ip(self.bridge_ns, "link", "set", "br0", "up")

    def exec_ip(self, ns: str, *args: str) -> str:
        return ip("-n", ns, *args)

    def add_host(self, host: str, last_octet: int) -> str:
        """A namespace with lo and eth0 (SUBNET.last_octet/24) cabled to the bridge."""
        ns, address = self.ns(host), f"{SUBNET}.{last_octet}"
        self._links += 1
        inner, outer = f"c{self.run}h{self._links}", f"c{self.run}b{self._links}"
        ip("netns", "add", ns)
        self.hosts[host] = address
        ip("link", "add", inner, "type", "veth", "peer", "name", outer)
        ip("link", "set", inner, "netns", ns)
        ip("link", "set", outer, "netns", self.bridge_ns)
        self.exec_ip(ns, "link", "set", inner, "name", "eth0")
        self.exec_ip(ns, "addr", "add", f"{address}/24", "dev", "eth0")
        self.exec_ip(ns, "link", "set", "eth0", "up")
        self.exec_ip(ns, "link", "set", "lo", "up")
        self.exec_ip(self.bridge_ns, "link", "set", outer, "master", "br0")
        self.exec_ip(self.bridge_ns, "link", "set", outer, "up")
        return address

    def add_addresses(self, host: str, first_octet: int, count: int) -> list[str]:
        """More addresses on ``host``'s eth0 (SUBNET.first_octet onwards): clients there can
        each speak from one of their own, as people on machines of their own do."""
        assert first_octet + count <= 255, "the subnet is a /24"
        addresses = [f"{SUBNET}.{first_octet + k}" for k in range(count)]
        for address in addresses:
            self.exec_ip(self.ns(host), "addr", "add", f"{address}/24", "dev", "eth0")
        self.more_addresses.setdefault(host, []).extend(addresses)
        return addresses

    def command(self, host: str, argv: list[str], user: str | None = None) -> list[str]:
        """``argv`` run on ``host`` (as ``user``)."""
        prefix = ["ip", "netns", "exec", self.ns(host)]
        if user is not None:
            prefix += ["runuser", "-u", user, "--"]
        return [*prefix, *argv]

    def pids(self, host: str) -> list[int]:
        out = ip("netns", "pids", self.ns(host))
        return [int(line) for line in out.split()]

    def kill_all(self, host: str) -> list[int]:
        """SIGKILL every process of the host (as when the machine is lost)."""
        pids = self.pids(host)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    @contextlib.contextmanager
    def inside(self, host: str) -> Iterator[None]:
        """This thread (and the threads and processes it starts meanwhile) on ``host``."""
        with open("/proc/thread-self/ns/net") as own, open(f"/run/netns/{self.ns(host)}") as ns:
            _setns(ns.fileno())
            try:
                yield
            finally:
                _setns(own.fileno())

    def close(self) -> list[str]:
        """Kill what runs on every host, delete every namespace (their veth ends go with
        them). Returns what could not be removed."""
        problems = []
        for host in list(self.hosts):
            with contextlib.suppress(RuntimeError):
                self.kill_all(host)
        for ns in [*(self.ns(h) for h in self.hosts), self.bridge_ns]:
            try:
                ip("netns", "del", ns)
            except RuntimeError as exc:
                if "No such file" not in str(exc):
                    problems.append(str(exc))
        self.hosts.clear()
        self.more_addresses.clear()
        return problems
