"""A whole organisation's export (policy §11): asked for through the API, built by the
job, downloaded once through a single-use link, with a manifest that verifies; the file
leaves the disk when taken or when it expires."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from cybergine.accounts.models import Role
from cybergine.accounts.service import organisations
from cybergine.privacy.bundle import MANIFEST, PUBLIC_KEY, SIGNATURE, verify_bundle
from cybergine.privacy.organisation_export import service
from cybergine.privacy.organisation_export.models import OrganisationExport
from tests.support.factories import make_api_key
from tests.support.whatsapp import Shop, fixture, readdress

ADA = "15550001111"
PHOTO = b"\x89PNG-ada-photo"
POLICY = b"Returns are accepted within thirty days of delivery."


async def _fill(shop: Shop) -> None:
    shop.says("Where is my parcel? I'm Ada", wa_id=ADA)
    photo = readdress(fixture("image_01.json"), shop.phone_number_id)
    value = photo["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = ADA
    value["messages"][0]["from"] = ADA
    value["messages"][0]["id"] = "wamid.export-photo"
    shop.graph.add_media(value["messages"][0]["image"]["id"], PHOTO, "image/png")
    value["messages"][0]["image"].pop("sha256", None)
    assert shop.post(photo).status_code == 200
    uploaded = shop.api.post(
        "/api/v1/knowledge/documents", files={"file": ("returns.txt", POLICY, "text/plain")}
    )
    assert uploaded.status_code == 202, uploaded.text
    await shop.work()


def _read(archive: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        members = {name: opened.read(name) for name in opened.namelist()}
    return json.loads(members[MANIFEST]), members


def _lines(members: dict[str, bytes], name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in members[name].decode().splitlines()]


async def _ready(shop: Shop) -> dict[str, Any]:
    requested = shop.api.post("/api/v1/organisation/export")
    assert requested.status_code == 202, requested.text
    assert requested.headers["location"] == requested.json()["status_url"]
    await shop.work()
    status = shop.api.get(requested.json()["status_url"])
    assert status.status_code == 200
    assert status.json()["status"] == "ready", status.json()
    body: dict[str, Any] = status.json()
    return body


async def test_an_owner_downloads_everything_once_and_the_manifest_verifies(shop: Shop) -> None:
    await _fill(shop)
    requested = shop.api.post("/api/v1/organisation/export")
    assert requested.status_code == 202, requested.text
    export = requested.json()
    assert export["status"] == "queued"
    # One at a time, and nothing to download before it is built.
    assert shop.api.post("/api/v1/organisation/export").status_code == 409
    assert shop.api.post(export["link_url"]).status_code == 409

    await shop.work()
    export = shop.api.get(export["status_url"]).json()
    assert export["status"] == "ready"
    assert export["counts"]["messages"] >= 2
    assert export["counts"]["members"] == 1
    link = shop.api.post(export["link_url"])
    assert link.status_code == 201, link.text
    # A newer link replaces the older one.
    newer = shop.api.post(export["link_url"]).json()["download_url"]
    assert shop.api.get(link.json()["download_url"]).status_code == 404

    downloaded = shop.api.get(newer)
    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.headers["content-type"] == "application/zip"
    assert hashlib.sha256(downloaded.content).hexdigest() == export["sha256"]
    manifest, members = _read(downloaded.content)

    # Every file is in the manifest, with its hash; nothing else is in the archive.
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert set(listed) == set(members) - {MANIFEST, SIGNATURE, PUBLIC_KEY}
    assert verify_bundle(downloaded.content) == []  # what `cybergine privacy verify-export` runs
    tampered = io.BytesIO()
    with zipfile.ZipFile(tampered, "w") as copy:
        for name, content in members.items():
            if name == "messages.jsonl":
                content = content.replace(b"parcel", b"packet")
            copy.writestr(name, content)
    assert verify_bundle(tampered.getvalue()) == [
        "messages.jsonl: its SHA-256 is not the manifest's"
    ]
    for path, entry in listed.items():
        assert hashlib.sha256(members[path]).hexdigest() == entry["sha256"], path
        assert len(members[path]) == entry["bytes"]

    messages = _lines(members, "messages.jsonl")
    assert any(m["text"] == "Where is my parcel? I'm Ada" for m in messages)
    [attachment] = _lines(members, "message_attachments.jsonl")
    assert members[attachment["data_file"]] == PHOTO
    assert "data" not in attachment
    [customer] = _lines(members, "customers.jsonl")
    assert customer["phone_number"] == f"+{ADA}"
    assert len(_lines(members, "conversations.jsonl")) == 1
    [kb_file] = _lines(members, "kb_files.jsonl")
    assert members[kb_file["data_file"]] == POLICY
    assert any(i["title"] for i in _lines(members, "kb_items.jsonl"))
    assert [a["name"] for a in _lines(members, "assistants.jsonl")] == ["Mia"]
    [owner] = _lines(members, "members.jsonl")
    assert owner["role"] == "owner"
    assert "@" in owner["email"]
    actions = {e["action"] for e in _lines(members, "audit_events.jsonl")}
    assert "organisation.export.requested" in actions
    # Credentials are not handed out, even to an owner; search indexes are not copied.
    [number] = _lines(members, "whatsapp_numbers.jsonl")
    assert "access_token" not in number
    assert "app_secret" not in number
    assert "verify_token_sha256" not in number
    assert all("key_hash" not in key for key in _lines(members, "api_keys.jsonl"))
    assert "kb_chunks.jsonl" not in members
    assert all("organisation_id" not in line for line in messages)

    # Taken once: the link is spent, the file is gone, the trail says who took it.
    assert shop.api.get(newer).status_code == 404
    assert shop.api.get(export["status_url"]).json()["status"] == "downloaded"
    assert list(service.exports_directory(shop.settings.data_dir).iterdir()) == []
    trail = shop.api.get("/api/v1/audit-events").json()
    done = [e["action"] for e in trail if e["target_id"] == export["id"]]
    assert "organisation.export.downloaded" in done
    assert "organisation.export.link_issued" in done


async def test_only_owners_export(shop: Shop) -> None:
    admin_key = await make_api_key(shop.database, shop.organisation_id, Role.ADMIN)
    with httpx.Client(
        base_url=str(shop.api.base_url), headers={"authorization": f"Bearer {admin_key}"}
    ) as admin:
        assert admin.post("/api/v1/organisation/export").status_code == 403
        assert admin.get("/api/v1/organisation/export").status_code == 403


async def test_an_export_not_taken_in_time_leaves_the_disk(shop: Shop) -> None:
    export = await _ready(shop)
    folder = service.exports_directory(shop.settings.data_dir)
    assert [p.name for p in folder.iterdir()] == [f"{export['id']}.zip"]
    # A file no export needs (its organisation erased meanwhile) goes too.
    (folder / "0190c8e5-0000-7000-8000-000000000000.zip").write_bytes(b"left behind")
    link = shop.api.post(export["link_url"]).json()["download_url"]

    assert await service.expire(shop.database, shop.settings.data_dir) == 0  # not yet
    later = datetime.now(UTC) + service.KEPT_FOR + timedelta(minutes=1)
    assert await service.expire(shop.database, shop.settings.data_dir, now=later) == 2
    assert list(folder.iterdir()) == []
    assert shop.api.get(export["status_url"]).json()["status"] == "expired"
    assert shop.api.get(link).status_code == 404
    assert shop.api.post(export["link_url"]).status_code == 409
    # The finished export's row goes some time after (the audit trail keeps its story).
    await service.expire(shop.database, shop.settings.data_dir, now=later + service.ROW_KEPT_FOR)
    assert shop.api.get(export["status_url"]).status_code == 404
    # And the organisation may ask again.
    assert shop.api.post("/api/v1/organisation/export").status_code == 202


async def test_an_export_of_an_erased_organisation_is_not_kept(shop: Shop) -> None:
    requested = shop.api.post("/api/v1/organisation/export").json()
    async with shop.database.transaction() as session:
        await organisations.schedule_deletion(
            session, shop.organisation_id, grace=timedelta(0), now=datetime.now(UTC)
        )
    # The erasure and the build are both due: whichever runs first, no row is left, and
    # no file either once the clean-up has run.
    await shop.work()
    async with shop.database.transaction() as session:
        assert await session.get(OrganisationExport, requested["id"]) is None
    later = datetime.now(UTC) + service.FRESH_FILE + timedelta(minutes=1)
    await service.expire(shop.database, shop.settings.data_dir, now=later)
    assert list(service.exports_directory(shop.settings.data_dir).glob("*")) == []
