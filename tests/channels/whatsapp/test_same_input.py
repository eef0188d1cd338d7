"""The same deliveries through both ways in, the same rows out.

A WhatsApp delivery is stored either in a batch of the webhook's group commit
(``delivery_items`` and the function ``cybergine_whatsapp_ingest``) or in a transaction
of its own (``store_delivery``: the same function for this delivery alone, then what
only Python does, media downloads and consent words). The routing between the two
must not change what is stored. Every real payload in
``tests/fixtures/whatsapp/`` is sent twice (Meta delivers again when unsure), then status
sequences that arrive out of order, repeat, fail, or name our message only by its id in
``biz_opaque_callback_data``; each way writes into a database of its own, cloned from one
seeded database, and the rows they hold are compared once the ids that only one database
drew are replaced by what they stand for.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import Role
from cybergine.accounts.principal import Principal
from cybergine.assistants import service as assistants
from cybergine.assistants.changes import AssistantChanges
from cybergine.channels.whatsapp.ingest import (
    INGEST_NAMES,
    NumberDirectory,
    NumberRoute,
    delivery_items,
    store_delivery,
)
from cybergine.conversations.models import Direction, MessageStatus, Sender
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.db.urls import libpq_url
from cybergine.realtime.events import CHANNEL
from tests.conftest import create_database, drop_database
from tests.support.conversations import make_conversation, make_message, make_whatsapp_number
from tests.support.factories import make_organisation
from tests.support.whatsapp import FIXTURES, fixture, readdress

PHONE_NUMBER_ID = "106540352242922"
CUSTOMER = "15550007777"  # who our outbound messages went to
CALLBACK_ONLY = uuid.UUID("01890000-0000-7000-8000-00000000c0de")  # its send not committed

Ingest = Callable[[AsyncSession, Mapping[str, Any], Mapping[str, NumberRoute]], Awaitable[None]]


async def python_path(
    session: AsyncSession, body: Mapping[str, Any], routes: Mapping[str, NumberRoute]
) -> None:
    await store_delivery(session, body, routes)


async def sql_path(
    session: AsyncSession, body: Mapping[str, Any], routes: Mapping[str, NumberRoute]
) -> None:
    """As the webhook does: the group commit's batch when it can, else alone."""
    items = delivery_items(body, routes)
    if items is None:
        await store_delivery(session, body, routes)
        return
    items.sort(key=lambda item: item["lock_key"])
    await session.execute(
        text("SELECT cybergine_whatsapp_ingest(CAST(:batch AS jsonb), CAST(:names AS jsonb))"),
        {"batch": json.dumps(items), "names": json.dumps(INGEST_NAMES)},
    )


def _status(wamid: str, status: str, at: int, **extra: Any) -> dict[str, Any]:
    return readdress(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550783881",
                                    "phone_number_id": PHONE_NUMBER_ID,
                                },
                                "statuses": [
                                    {
                                        "id": wamid,
                                        "status": status,
                                        "timestamp": str(at),
                                        "recipient_id": CUSTOMER,
                                        **extra,
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        },
        PHONE_NUMBER_ID,
        now=False,
    )


FAILURE = {
    "errors": [
        {
            "code": 131047,
            "title": "Re-engagement message",
            "message": "Re-engagement message",
            "error_data": {"details": "More than 24 hours have passed."},
        }
    ]
}


def status_sequences() -> Iterator[dict[str, Any]]:
    """Out of order, repeated, a voice message played, a failure after delivery, and a
    status that names our message only by its callback data (its send's commit was
    overtaken)."""
    yield from (
        _status("wamid.sequence.1", "read", 1_700_000_030),
        _status("wamid.sequence.1", "delivered", 1_700_000_020),
        _status("wamid.sequence.1", "sent", 1_700_000_010),
        _status("wamid.sequence.1", "read", 1_700_000_040),
        _status("wamid.sequence.1", "played", 1_700_000_050),
        _status("wamid.sequence.2", "sent", 1_700_000_010),
        _status("wamid.sequence.2", "delivered", 1_700_000_020),
        _status("wamid.sequence.2", "failed", 1_700_000_030, **FAILURE),
        _status("wamid.sequence.2", "failed", 1_700_000_031, **FAILURE),
        _status("wamid.sequence.3", "failed", 1_700_000_010, **FAILURE),
        _status("wamid.sequence.3", "deleted", 1_700_000_020),
        _status(
            "wamid.by.callback",
            "sent",
            1_700_000_010,
            biz_opaque_callback_data=str(CALLBACK_ONLY),
        ),
        _status("wamid.by.callback", "delivered", 1_700_000_020),
        _status("wamid.nobody.knows", "read", 1_700_000_010),
    )


def deliveries() -> Iterator[dict[str, Any]]:
    bodies = [
        readdress(fixture(path.name), PHONE_NUMBER_ID, now=False)
        for path in sorted(FIXTURES.glob("*.json"))
    ]
    yield from bodies
    yield from bodies  # Meta delivers again
    yield from status_sequences()


def _wamids_of_statuses() -> set[str]:
    found = {"wamid.sequence.1", "wamid.sequence.2", "wamid.sequence.3"}
    for path in FIXTURES.glob("status_*.json"):
        for entry in fixture(path.name)["entry"]:
            for change in entry["changes"]:
                found.update(s["id"] for s in change["value"].get("statuses", []))
    return found


@pytest.fixture
async def seeded_url(postgres_admin_url: str, template_url: str) -> AsyncIterator[str]:
    """A shop with an assistant on one number, and the messages it sent that the status
    payloads speak of; then cloned, so both ways start from the very same rows."""
    url = create_database(postgres_admin_url)
    database = Database(url, pool_size=1)
    try:
        organisation, owner = await make_organisation(database, name="Same Input")
        async with database.transaction() as session:
            scope = TenantScope(session, organisation.id)
            assistant = await assistants.create_assistant(
                scope,
                Principal(organisation.id, Role.OWNER, user_id=owner.id),
                AssistantChanges(name="Mia", fields_set={"name"}),
            )
            number = await make_whatsapp_number(
                session, organisation.id, assistant.id, phone_number_id=PHONE_NUMBER_ID
            )
            conversation = await make_conversation(
                session,
                organisation.id,
                assistant_id=assistant.id,
                whatsapp_number_id=number.id,
            )
            outbound = {"direction": Direction.OUTBOUND, "sender": Sender.ASSISTANT}
            for wamid in sorted(_wamids_of_statuses()):
                await make_message(
                    session,
                    conversation,
                    status=MessageStatus.QUEUED,
                    external_id=wamid,
                    **outbound,
                )
            await make_message(
                session, conversation, status=MessageStatus.QUEUED, id=CALLBACK_ONLY, **outbound
            )
    finally:
        await database.dispose()
    yield url
    drop_database(postgres_admin_url, url)


async def _ingest_all(admin_url: str, seeded_url: str, ingest: Ingest) -> dict[str, list[Any]]:
    """The rows, and what the writes announced (NOTIFY), after every delivery."""
    seeded = seeded_url.rsplit("/", 1)[1].split("?", 1)[0]
    url = create_database(admin_url, template=seeded)
    database = Database(url, pool_size=1)
    listener = await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True)
    try:
        await listener.execute(f"LISTEN {CHANNEL}")
        routes = await NumberDirectory(database, default_app_secret=None).lookup([PHONE_NUMBER_ID])
        for body in deliveries():
            async with database.transaction() as session:
                await ingest(session, body, routes)
        async with database.transaction() as session:
            rows, label = await _normalised_rows(session)
            await session.execute(text(f"NOTIFY {CHANNEL}, '{END_OF_INGEST}'"))
        announced = []
        async for notification in listener.notifies():
            if notification.payload == END_OF_INGEST:
                break
            announced.append(json.loads(notification.payload))
        rows["announcements"] = _sorted([label(event) for event in announced])
        return rows
    finally:
        await listener.close()
        await database.dispose()
        drop_database(admin_url, url)


# Set by the database when the row is written, not by any rule.
_WRITTEN_AT = {"created_at", "updated_at", "last_message_at"}
END_OF_INGEST = "end of ingest"  # sent last: every announcement came before it
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _sorted(rows: list[Any]) -> list[Any]:
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


async def _normalised_rows(
    session: AsyncSession,
) -> tuple[dict[str, list[Any]], Callable[[Any], Any]]:
    """Rows with each id drawn by one database alone replaced by what it names: a
    message by its external id, a customer by its wa_id, a conversation by its
    customer's; an id that names nothing stays visible as such. With the labelling, for
    what the writes announced."""

    async def rows(query: str) -> list[dict[str, Any]]:
        return [dict(row) for row in (await session.execute(text(query))).mappings()]

    customers = await rows("SELECT * FROM customers")
    conversations = await rows("SELECT * FROM conversations")
    messages = await rows("SELECT * FROM messages")
    names: dict[str, str] = {}
    for customer in customers:
        names[str(customer["id"])] = f"customer {customer['external_id']}"
    external = {str(c["id"]): c["external_id"] for c in customers}
    for conversation in conversations:
        names[str(conversation["id"])] = (
            f"conversation of {external[str(conversation['customer_id'])]}"
        )
    for message in messages:
        names[str(message["id"])] = f"message {message['external_id'] or message['id']}"
    attachments = await rows("SELECT * FROM message_attachments")
    for attachment in attachments:
        names[str(attachment["id"])] = f"attachment of {names[str(attachment['message_id'])]}"

    def label(value: Any) -> Any:
        if isinstance(value, uuid.UUID):
            return names.get(str(value), value)
        if isinstance(value, str):
            return _UUID.sub(lambda m: names.get(m.group(0), m.group(0)), value)
        if isinstance(value, dict):
            return {k: label(v) for k, v in value.items()}
        if isinstance(value, list):
            return [label(v) for v in value]
        return value

    def normalised(table: list[dict[str, Any]], *left_out: str) -> list[Any]:
        kept = [
            {k: label(v) for k, v in row.items() if k not in _WRITTEN_AT and k not in left_out}
            for row in table
        ]
        return _sorted(kept)

    def dangling(value: Any) -> bool:
        return isinstance(value, uuid.UUID) and str(value) not in names

    for conversation in conversations:
        assert not dangling(conversation["last_message_id"]), "points at no message"
    jobs = await rows(
        "SELECT queue_name, task_name, priority, lock, queueing_lock, args, status,"
        " scheduled_at, attempts FROM procrastinate_jobs"
    )
    return {
        "customers": normalised(customers),
        "conversations": normalised(conversations),
        "messages": normalised(messages),
        "attachments": normalised(attachments),
        # An event is named by nothing else: which one is which does not matter.
        "webhook events": normalised(await rows("SELECT * FROM whatsapp_webhook_events"), "id"),
        "jobs": normalised(jobs),
    }, label


async def test_every_fixture_twice_stores_the_same_rows_on_both_paths(
    postgres_admin_url: str, seeded_url: str
) -> None:
    by_sql = await _ingest_all(postgres_admin_url, seeded_url, sql_path)
    by_python = await _ingest_all(postgres_admin_url, seeded_url, python_path)

    assert len(by_python["conversations"]) > 1
    assert len(by_python["jobs"]) > 1
    assert len(by_python["announcements"]) > 1
    for table, rows in by_python.items():
        assert by_sql[table] == rows, table
