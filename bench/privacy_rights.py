"""Privacy's numbers, part one: a customer's export and erasure (``bench/privacy.py``
runs it; its docstring says what is seeded and measured)."""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import text

import whatsapp
from cybergine.accounts.models import Role
from cybergine.accounts.principal import Principal
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.privacy.api import export_response
from cybergine.privacy.erasure import erase_customer
from cybergine.privacy.export import export_customer
from privacy_seeds import FIRST_WA_ID, OTHER_CUSTOMER_MESSAGES, RIGHTS_SEED

GOAL_ERASURE_SECONDS = 2.0  # policy §14
GOAL_EXPORT_SECONDS = 5.0


@dataclass
class Rights:
    export_seconds: list[float]
    erasure_seconds: list[float]
    export_bytes: list[int]
    held: dict[str, int]  # what the first export and erasure counted
    webhook_events: int  # raw deliveries in the organisation


async def run_rights(url: str, args: argparse.Namespace) -> Rights:
    database = Database(url, pool_size=2, statement_timeout_ms=0)
    organisation, number = uuid.uuid4(), uuid.uuid4()
    params = {
        "org": organisation,
        "number": number,
        "first": FIRST_WA_ID,
        "reps": args.repetitions,
        "others": args.other_customers,
        "per_customer": args.conversations_per_customer,
        "messages": args.messages,
        "other_messages": OTHER_CUSTOMER_MESSAGES,
        "attachments": args.attachments,
        "attachment_bytes": args.attachment_bytes,
    }
    started = time.perf_counter()
    for statement in RIGHTS_SEED:
        async with database.transaction() as session:
            await session.execute(text(statement), params)
    async with database.autocommit() as session:
        await session.execute(text("VACUUM ANALYZE"))
    async with database.transaction() as session:
        events: int = (
            await session.execute(
                text("SELECT count(*) FROM whatsapp_webhook_events WHERE organisation_id = :org"),
                params,
            )
        ).scalar_one()
    print(f"rights: seeded in {time.perf_counter() - started:.1f} s", flush=True)

    officer = Principal(
        organisation_id=organisation, role=Role.OWNER, user_id=uuid.uuid4(), email="dpo@shop.test"
    )
    result = Rights([], [], [], {}, events)
    for n in range(1, args.repetitions + 1):
        async with database.transaction() as session:
            customer_id: uuid.UUID = (
                await session.execute(
                    text(
                        "SELECT id FROM customers WHERE organisation_id = :org AND external_id = :e"
                    ),
                    {"org": organisation, "e": str(FIRST_WA_ID + n)},
                )
            ).scalar_one()
        started = time.perf_counter()
        async with database.transaction() as session:
            exported = await export_customer(
                TenantScope(session, organisation), officer, customer_id
            )
        body = export_response(exported, customer_id).body
        result.export_seconds.append(time.perf_counter() - started)
        result.export_bytes.append(len(body))
        started = time.perf_counter()
        async with database.transaction() as session:
            erasure = await erase_customer(TenantScope(session, organisation), officer, customer_id)
        result.erasure_seconds.append(time.perf_counter() - started)
        if not result.held:
            result.held = {
                "conversations": erasure.conversations,
                "messages": erasure.messages,
                "attachments": erasure.attachments,
                "webhook_events": erasure.webhook_events,
                "exported messages": sum(len(c["messages"]) for c in exported["conversations"]),
            }
    await database.dispose()
    return result


def print_rights(rights: Rights, args: argparse.Namespace) -> bool:
    """True when the export and the erasure found everything seeded; a missed time goal is
    printed, not an error (this machine may be busy)."""

    def row(label: str, seconds: list[float], goal: float) -> None:
        ok = statistics.median(seconds) <= goal
        print(
            f"{label}: median {statistics.median(seconds):.2f} s, min {min(seconds):.2f} s,"
            f" max {max(seconds):.2f} s over {len(seconds)} customers;"
            f" goal <= {goal:.0f} s: {whatsapp.verdict(ok)}"
        )

    print(
        f"\ncustomer rights: {args.messages:,} messages, {args.attachments} attachments of"
        f" {args.attachment_bytes:,} bytes, {args.conversations_per_customer} conversations per"
        f" customer; {args.other_customers} other customers with {OTHER_CUSTOMER_MESSAGES} each"
        f" in the organisation, {rights.webhook_events:,} raw webhook deliveries in all"
    )
    print(f"held, as the first erasure counted it: {rights.held}")
    row("export (service + JSON encoding, committed)", rights.export_seconds, GOAL_EXPORT_SECONDS)
    sizes = rights.export_bytes
    print(
        f"export size: median {statistics.median(sizes) / 1e6:.1f} MB"
        f" ({min(sizes):,}-{max(sizes):,} bytes)"
    )
    row("erasure (committed)", rights.erasure_seconds, GOAL_ERASURE_SECONDS)
    expected = {"messages": args.messages, "attachments": args.attachments}
    complete = all(rights.held.get(k) == v for k, v in expected.items()) and (
        rights.held.get("exported messages") == args.messages
    )
    if not complete:
        print(f"MISMATCH: expected {expected} in the export and the erasure")
    return complete
