"""The cluster soak: ``tests/cluster`` (hosts in network namespaces: PostgreSQL, web x2,
worker x2, HAProxy, the load) at a soak's sizes, each phase held for a quarter of the
run: load, then one web host killed (SIGKILL), then one worker host, then PostgreSQL
restarted, then the checks (nothing lost, nothing twice, every status applied, sockets
back, no job running).

The webhook traffic has Meta's mix: a customer's question, then its reply's statuses
(sent, delivered, read), which the Graph API simulator reports through the balancer as
Meta does, so a quarter of the deliveries are questions. ``--questions-only`` makes every
delivery a question (the heaviest mix: each one a reply to write and send).

It prints the test's timeline: when each host was ready and each fault struck, how long
the sockets took to come back through the other web host, how many deliveries were sent
again, the webhook rate reached (questions and statuses), and the p50/p99 of the first
tries' acknowledgements (of the questions, of the statuses, of all) outside the faults: a
try under way at a fault or begun in the 10 s after one is left out. And, outside the
faults too, how long a customer waited from a question to its reply.

Usage (as root, haproxy installed): .venv/bin/python bench/cluster.py
       [--minutes 10] [--rate 200] [--questions-only] [--sockets 500] [--writers 50]
       [--worker-nice N]
Goals (issue 18): 0 lost, 0 duplicated; p99 acknowledgement <= 250 ms outside the fault
windows; sockets back within 5 s of losing their web host.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--rate", type=float, default=200.0, help="webhook deliveries/s, questions and statuses"
    )
    parser.add_argument(
        "--questions-only", action="store_true", help="every delivery a question, no statuses"
    )
    parser.add_argument("--sockets", type=int, default=500, help="widget sockets held open")
    parser.add_argument(
        "--writers", type=int, default=50, help="visitors writing, each from its own address"
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        help="the worker hosts' CYBERGINE_WORKER_NICE (default: the platform's), to compare",
    )
    args = parser.parse_args()
    env = {
        **os.environ,
        "CLUSTER_RATE": str(args.rate),
        "CLUSTER_STATUSES": "0" if args.questions_only else "1",
        "CLUSTER_SOCKETS": str(args.sockets),
        "CLUSTER_WRITERS": str(min(args.writers, args.sockets)),
        "CLUSTER_HOLD_SECONDS": str(args.minutes * 60 / 4),
    }
    if args.worker_nice is not None:
        env["CLUSTER_WORKER_NICE"] = str(args.worker_nice)
    budget = int(args.minutes * 60 + 900)  # start-up, the faults' recovery, the checks
    command = [
        sys.executable, "-m", "pytest", "tests/cluster", "-m", "cluster", "-n", "0",
        "-p", "no:cacheprovider", "-s", "-q", "--timeout", str(budget),
    ]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
