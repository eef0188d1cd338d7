"""Erasure leaves nothing (policy §14): after erasing a WhatsApp customer whose messages
carry Meta's real ids (base64 of a structure holding the phone number) and a web
visitor, no text, JSON or bytes column of any table, the job queue's included, holds
their phone number in any spelling, its base64 forms, their ids, names or words; and
everything erasure removed was in the export taken just before."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from cybergine.channels.whatsapp.models import WebhookEvent
from cybergine.channels.whatsapp.simulator import new_wamid, status_webhook
from cybergine.job_names import JobName
from cybergine.privacy import registry
from cybergine.privacy.pseudonyms import erased_external_id
from tests.support.whatsapp import Shop, fixture, readdress

JORDAN = "255757294146"  # the customer of Meta's own example (fixtures/whatsapp/text_14.json)
JORDAN_NAME = "Jordan Kalebu"
GRACE = "15550002222"
SHOP = "https://shop.example"
JORDAN_WORDS = "My quokka parcel to Zanzibar never arrived"
VISITOR_WORDS = "Lighthouse marmalade order for Penzance"
GRACE_WORDS = "Does the teapot come in cobalt"
PHOTO = b"\x89PNG-jordan-photo-bytes-quokka"


def _base64_cores(value: bytes) -> set[str]:
    """The base64 characters that encode only ``value``'s bytes, at each of the three
    alignments it can have inside a longer structure, in both alphabets."""
    cores = set()
    for offset in range(3):
        padded = b"\x00" * offset + value + b"\x00" * 3
        encoded = base64.b64encode(padded).decode()
        kept = [
            char
            for index, char in enumerate(encoded)
            if offset <= (6 * index) // 8 and (6 * index + 5) // 8 < offset + len(value)
        ]
        core = "".join(kept)
        cores |= {core, core.replace("+", "-").replace("/", "_")}
    return cores


def _text_columns() -> str:
    return (
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type IN "
        "('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY', "
        "'tsvector') ORDER BY table_name, column_name"
    )


async def _scan(shop: Shop, needles: set[str]) -> list[str]:
    """``table.column: needle`` for every needle found anywhere (case-insensitive)."""
    hits: list[str] = []
    async with shop.database.transaction() as session:
        columns = (await session.execute(text(_text_columns()))).all()
        assert {"messages", "procrastinate_jobs", "customers"} <= {t for t, _, _ in columns}
        for table, column, data_type in columns:
            value = (
                f"encode(\"{column}\", 'escape')" if data_type == "bytea" else f'"{column}"::text'
            )
            rows = await session.execute(
                text(f'SELECT {value} FROM "{table}" WHERE "{column}" IS NOT NULL')
            )
            for (found,) in rows:
                lowered = str(found).casefold()
                hits += [
                    f"{table}.{column}: {needle}"
                    for needle in needles
                    if needle.casefold() in lowered
                ]
    return hits


def _widget_session(http: httpx.Client, key: str, token: str | None = None) -> dict[str, Any]:
    response = http.post(
        "/widget/v1/session",
        json={"widget_key": key, "visitor_token": token},
        headers={"Origin": SHOP},
    )
    assert response.status_code == 200, response.text
    started: dict[str, Any] = response.json()
    return started


def _widget_says(http: httpx.Client, token: str, words: str) -> httpx.Response:
    return http.post(
        "/widget/v1/messages",
        json={"text": words, "client_id": uuid.uuid4().hex},
        headers={"Origin": SHOP, "Authorization": f"Bearer {token}"},
    )


def _customer(shop: Shop, **params: str) -> dict[str, Any]:
    response = shop.api.get("/api/v1/customers", params=params)
    assert response.status_code == 200, response.text
    [found] = response.json()
    customer: dict[str, Any] = found
    return customer


async def _jordan_and_grace_write(shop: Shop) -> list[str]:
    """Jordan's life on WhatsApp, every personal column touched; answers Jordan's wamids."""
    first = readdress(fixture("text_14.json"), shop.phone_number_id)
    assert shop.post(first).status_code == 200
    wamids = [first["entry"][0]["changes"][0]["value"]["messages"][0]["id"]]
    wamids.append(shop.says(JORDAN_WORDS, wa_id=JORDAN, message_id=new_wamid(JORDAN)))
    shop.says(GRACE_WORDS, wa_id=GRACE)
    photo = readdress(fixture("image_01.json"), shop.phone_number_id)
    value = photo["entry"][0]["changes"][0]["value"]
    value["contacts"][0] = {"profile": {"name": JORDAN_NAME}, "wa_id": JORDAN}
    value["messages"][0]["from"] = JORDAN
    value["messages"][0]["id"] = new_wamid(JORDAN)
    wamids.append(value["messages"][0]["id"])
    value["messages"][0]["image"].pop("sha256", None)
    shop.graph.add_media(value["messages"][0]["image"]["id"], PHOTO, "image/png")
    assert shop.post(photo).status_code == 200
    await shop.work()
    # One of the replies fails, with Meta's details.
    [reply, *_] = [m for m in shop.graph.sent if m.to == JORDAN]
    wamids.append(reply.wamid)
    failed = status_webhook(
        shop.phone_number_id,
        reply.wamid,
        JORDAN,
        "failed",
        errors=[
            {
                "code": 131026,
                "title": "Message undeliverable",
                "error_data": {"details": f"Receiver {JORDAN} is incapable of receiving"},
            }
        ],
    )
    assert shop.post(failed).status_code == 200
    shop.says("I want to talk to a person", wa_id=JORDAN, message_id=new_wamid(JORDAN))
    await shop.work()
    # They opt out; the confirmation's delivery job still waits when the erasure comes.
    shop.says("STOP", wa_id=JORDAN, message_id=new_wamid(JORDAN))
    wamids += [m.wamid for m in shop.graph.sent if m.to == JORDAN]
    return wamids


async def _snapshot(shop: Shop) -> dict[tuple[str, str], dict[str, Any]]:
    """Every customer-personal column's value, by (table, row id) and column."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    async with shop.database.transaction() as session:
        for table in registry.tables(registry.Subject.CUSTOMER):
            columns = [
                d.column for d in registry.personal(subject=registry.Subject.CUSTOMER, table=table)
            ]
            result = await session.execute(text(f'SELECT id, {", ".join(columns)} FROM "{table}"'))
            for row in result.mappings():
                rows[(table, str(row["id"]))] = {c: row[c] for c in columns}
    return rows


def _leaves(value: Any) -> Iterator[str]:
    """Every string, and every object or list as canonical JSON, of an export."""
    if isinstance(value, dict):
        yield json.dumps(value, sort_keys=True)
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        yield json.dumps(value, sort_keys=True)
        for item in value:
            yield from _leaves(item)
    elif value is not None:
        yield str(value)


def _as_exported(value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


@pytest.fixture
def settings(settings: Any) -> Any:
    return settings.model_copy(update={"widget_long_poll_seconds": 1.0})


async def test_erasure_leaves_no_trace_and_removes_only_what_the_export_showed(
    shop: Shop,
) -> None:
    wamids = await _jordan_and_grace_write(shop)
    widget = shop.api.post("/api/v1/assistants", json={"name": "Web", "allowed_origins": [SHOP]})
    assert widget.status_code == 201, widget.text
    key = widget.json()["widget_key"]
    http = shop.webhook
    started = _widget_session(http, key)
    token = started["visitor_token"]
    visitor_id = token.split(".")[2]
    assert _widget_says(http, token, VISITOR_WORDS).status_code == 202
    await shop.work()

    jordan = _customer(shop, phone_number=f"+{JORDAN}")
    visitor = _customer(shop, external_id=visitor_id)
    exports = []
    for customer in (jordan, visitor):
        response = shop.api.get(f"/api/v1/customers/{customer['id']}/export")
        assert response.status_code == 200, response.text
        exports.append(response.json())
    jordan_export = exports[0]
    assert jordan_export["customer"]["opt_out_source"]
    assert any(c["handoff_reason"] for c in jordan_export["conversations"])
    messages = [m for c in jordan_export["conversations"] for m in c["messages"]]
    assert any(m["error_detail"] for m in messages)
    [photo] = [m["attachment"] for m in messages if m["attachment"]]
    assert base64.b64decode(photo["data"]) == PHOTO
    assert jordan_export["webhook_events"], "the raw deliveries that mention them"
    before = await _snapshot(shop)

    for customer in (jordan, visitor):
        erased = shop.api.delete(f"/api/v1/customers/{customer['id']}")
        assert erased.status_code == 200, erased.text

    # Everything erasure removed or changed was in the export taken just before.
    after = await _snapshot(shop)
    exported = {leaf for export in exports for leaf in _leaves(export)}
    for key_, values in before.items():
        for column, value in values.items():
            if value is None or after.get(key_, {}).get(column) == value:
                continue
            assert _as_exported(value) in exported, f"{key_[0]}.{column} erased unexported"

    needles = {
        JORDAN,
        f"+{JORDAN}",
        JORDAN_NAME,
        "Kalebu",
        "quokka",
        "Zanzibar",
        "marmalade",
        "Penzance",
        visitor_id,
        *_base64_cores(JORDAN.encode()),
        *wamids,
        *(w.removeprefix("wamid.") for w in wamids),
    }
    hits = await _scan(shop, needles)
    assert hits == [], hits
    # The scan does find what is still there: Grace's conversation.
    assert await _scan(shop, {GRACE, "teapot"})

    # One vacuum job waits for both erasures, and removes the row versions they left.
    async with shop.database.transaction() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs "
                "WHERE task_name = :task AND status = 'todo'"
            ),
            {"task": JobName.VACUUM_ERASED.value},
        )
    assert waiting == 1
    await shop.work()
    async with shop.database.transaction() as session:
        done = await session.scalar(
            text("SELECT status::text FROM procrastinate_jobs WHERE task_name = :task"),
            {"task": JobName.VACUUM_ERASED.value},
        )
    assert done == "succeeded"


async def test_an_erased_visitor_starts_afresh_and_sees_nothing_of_before(shop: Shop) -> None:
    widget = shop.api.post("/api/v1/assistants", json={"name": "Web", "allowed_origins": [SHOP]})
    key = widget.json()["widget_key"]
    http = shop.webhook
    old = _widget_session(http, key)["visitor_token"]
    assert _widget_says(http, old, VISITOR_WORDS).status_code == 202
    await shop.work()
    visitor = _customer(shop, external_id=old.split(".")[2])
    [before] = [c for c in shop.conversations() if c["customer"]["id"] == visitor["id"]]
    erased = shop.api.delete(f"/api/v1/customers/{visitor['id']}")
    assert erased.status_code == 200, erased.text
    assert erased.json()["customer_id"] != visitor["id"]  # its id came from the token

    # The old token is refused; the widget asks for a session and gets a new visitor.
    refused = _widget_says(http, old, "Hello again")
    assert refused.status_code == 401, refused.text
    fresh = _widget_session(http, key, token=old)
    assert fresh["visitor_token"] != old
    assert fresh["visitor_token"].split(".")[2] != old.split(".")[2]
    assert (fresh["messages"], fresh["conversation"]) == ([], None)
    again = _widget_says(http, fresh["visitor_token"], "Hello again")
    assert again.status_code == 202, again.text
    assert (
        _widget_session(http, key, token=fresh["visitor_token"])["conversation"]["id"]
        != (before["id"])
    )
    # The old conversation stays closed, for an erased customer.
    [closed] = [c for c in shop.conversations(state="closed") if c["id"] == before["id"]]
    assert closed["customer"]["erased"] is True


async def test_a_late_status_without_callback_data_finds_its_erased_message(shop: Shop) -> None:
    shop.says("Where is my quokka parcel?", wa_id=JORDAN, message_id=new_wamid(JORDAN))
    await shop.work()
    [reply] = [m for m in shop.graph.sent if m.to == JORDAN]
    jordan = _customer(shop, phone_number=f"+{JORDAN}")
    assert shop.api.delete(f"/api/v1/customers/{jordan['id']}").status_code == 200
    for status in ("delivered", "read"):
        # Without biz_opaque_callback_data: matched by the keyed hash of its wamid alone,
        # both alone (the SQL ingest) and beside a photo (the Python ingest).
        late = status_webhook(shop.phone_number_id, reply.wamid, JORDAN, status)
        if status == "read":
            photo = readdress(fixture("image_01.json"), shop.phone_number_id)
            late["entry"][0]["changes"] += photo["entry"][0]["changes"]
        assert shop.post(late).status_code == 200
    # The webhook's answer comes once both are stored.
    async with shop.database.transaction() as session:
        status_now = await session.scalar(
            text("SELECT status::text FROM messages WHERE external_id = :hashed"),
            {"hashed": erased_external_id(reply.wamid)},
        )
    assert status_now == "read"


async def test_a_raw_delivery_naming_their_message_by_its_keyed_hash_is_theirs(shop: Shop) -> None:
    """A status kept with the keyed hash of its message's id still belongs to the customer:
    exported with their data, and erased with it."""
    shop.says("Where is my quokka parcel?", wa_id=JORDAN, message_id=new_wamid(JORDAN))
    await shop.work()
    [reply] = [m for m in shop.graph.sent if m.to == JORDAN]
    hashed = {"statuses": [{"id": erased_external_id(reply.wamid), "status": "read"}]}
    async with shop.database.transaction() as session:
        session.add(
            WebhookEvent(
                organisation_id=shop.organisation_id,
                whatsapp_number_id=uuid.UUID(shop.number_id),
                field="messages",
                value=hashed,
            )
        )
    jordan = _customer(shop, phone_number=f"+{JORDAN}")
    exported = shop.api.get(f"/api/v1/customers/{jordan['id']}/export").json()
    assert hashed in [event["value"] for event in exported["webhook_events"]]
    assert await _events_like(shop, hashed) == 1
    assert shop.api.delete(f"/api/v1/customers/{jordan['id']}").status_code == 200
    assert await _events_like(shop, hashed) == 0


async def _events_like(shop: Shop, value: dict[str, Any]) -> int:
    async with shop.database.transaction() as session:
        found = await session.scalar(
            text("SELECT count(*) FROM whatsapp_webhook_events WHERE value @> CAST(:v AS jsonb)"),
            {"v": json.dumps(value)},
        )
    return int(found or 0)
