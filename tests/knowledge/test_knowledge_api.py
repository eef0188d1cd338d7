"""The knowledge base through its API: ingestion, indexing jobs, search, edits, deletion."""

from __future__ import annotations

import io
from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest
from pypdf import PdfWriter
from sqlalchemy import func, select

from cybergine.accounts.models import Role
from cybergine.db.engine import Database
from cybergine.knowledge.models import Chunk, Item, ItemFile
from cybergine.settings import Settings
from tests.support.factories import make_api_key, make_organisation_with_key
from tests.support.jobs import run_jobs
from tests.support.knowledge import search
from tests.support.server import LiveServer

RETURNS = (
    "You can return any unworn item within 30 days of delivery. Start a return from your "
    "order page; we email a prepaid label. Refunds reach your card within 5 working days."
)
SHIPPING = (
    "We ship to the EU, the UK and Switzerland. Standard delivery takes 3 to 5 working days "
    "and is free above 50 euros; express delivery arrives the next working day."
)


@pytest.fixture
async def api(live_server: LiveServer, database: Database) -> Iterator[httpx.Client]:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as client:
        yield client


async def _count(database: Database, model: type) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_document_is_indexed_by_a_job_and_found(
    api: httpx.Client, database: Database, settings: Settings
) -> None:
    created = api.post(
        "/api/v1/knowledge/documents",
        json={"title": "Returns policy", "text": RETURNS, "external_id": "policy-returns"},
    )
    assert created.status_code == 202, created.text
    document = created.json()
    assert document["status"] == "pending"
    assert document["collection"] == "default"
    api.post("/api/v1/knowledge/documents", json={"title": "Shipping", "text": SHIPPING})

    await run_jobs(database, settings)

    assert api.get(f"/api/v1/knowledge/documents/{document['id']}").json()["status"] == "ready"
    (best, *_) = search(api, "how many days do I have to send something back?", explain=True)
    assert best["document_id"] == document["id"]
    assert best["external_id"] == "policy-returns"
    assert best["kind"] == "document"
    assert "30 days" in best["text"]
    assert set(best) >= {"chunk_id", "document_id", "external_id", "title", "text", "score", "kind"}
    assert best["explain"]["dense"]["rank"] == 1
    assert best["explain"]["lexical"]["score"] > 0


async def test_a_qa_pair_matches_its_alternatives_and_returns_the_answer(
    api: httpx.Client, database: Database, settings: Settings
) -> None:
    api.post("/api/v1/knowledge/documents", json={"title": "Shipping", "text": SHIPPING})
    created = api.post(
        "/api/v1/knowledge/qa",
        json={
            "question": "Can I change my delivery address?",
            "answer": "Yes, until the parcel leaves our warehouse: reply to your order email.",
            "alternatives": ["I moved, where will my parcel go?", "wrong address on my order"],
        },
    )
    assert created.status_code == 202, created.text
    await run_jobs(database, settings)
    (best, *_) = search(api, "I typed the wrong address on my order")
    assert best["kind"] == "qa"
    assert best["document_id"] == created.json()["id"]
    assert best["text"].startswith("Yes, until the parcel leaves")


async def test_an_edit_reindexes_and_the_old_text_is_gone(
    api: httpx.Client, database: Database, settings: Settings
) -> None:
    created = api.post(
        "/api/v1/knowledge/documents",
        json={"title": "Opening hours", "text": "We open at 9 on Mondays."},
    ).json()
    await run_jobs(database, settings)
    edited = api.patch(
        f"/api/v1/knowledge/documents/{created['id']}",
        json={"text": "Our shop sells porcelain teapots."},
    )
    assert edited.status_code == 200
    assert edited.json()["status"] == "pending"
    await run_jobs(database, settings)
    results = search(api, "porcelain teapots")
    assert results[0]["document_id"] == created["id"]
    assert "Mondays" not in results[0]["text"]
    async with database.transaction() as session:
        texts = list((await session.execute(select(Chunk.text))).scalars())
    assert not any("Mondays" in text for text in texts)


async def test_deleted_items_are_not_retrievable_a_moment_later(
    api: httpx.Client, database: Database, settings: Settings
) -> None:
    document = api.post(
        "/api/v1/knowledge/documents", json={"title": "Returns", "text": RETURNS}
    ).json()
    qa = api.post(
        "/api/v1/knowledge/qa",
        json={"question": "Do you ship to Switzerland?", "answer": "Yes.", "collection": "faq"},
    ).json()
    await run_jobs(database, settings)
    assert search(api, "return an item")

    assert api.delete(f"/api/v1/knowledge/documents/{document['id']}").status_code == 204
    assert all(r["document_id"] != document["id"] for r in search(api, "return an item"))

    (collection,) = [
        c for c in api.get("/api/v1/knowledge/collections").json() if c["name"] == "faq"
    ]
    assert api.delete(f"/api/v1/knowledge/collections/{collection['id']}").status_code == 204
    assert api.get(f"/api/v1/knowledge/qa/{qa['id']}").status_code == 404
    assert search(api, "Switzerland") == []
    assert await _count(database, Chunk) == 0


async def test_external_ids_are_unique_per_organisation(
    api: httpx.Client, database: Database, live_server: LiveServer
) -> None:
    body = {"title": "A", "text": "alpha", "external_id": "page-1"}
    assert api.post("/api/v1/knowledge/documents", json=body).status_code == 202
    duplicate = api.post("/api/v1/knowledge/documents", json=body)
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"
    _, other_key = await make_organisation_with_key(database, name="Other")
    with live_server.client(headers={"authorization": f"Bearer {other_key}"}) as other:
        assert other.post("/api/v1/knowledge/documents", json=body).status_code == 202


async def test_lists_filter_and_paginate(api: httpx.Client) -> None:
    for n in range(5):
        api.post(
            "/api/v1/knowledge/documents",
            json={
                "title": f"Doc {n}",
                "text": f"text {n}",
                "external_id": f"d{n}",
                "collection": "even" if n % 2 == 0 else "odd",
            },
        )
    page = api.get("/api/v1/knowledge/documents", params={"limit": 2}).json()
    assert len(page["items"]) == 2
    rest = api.get(
        "/api/v1/knowledge/documents", params={"limit": 10, "cursor": page["next_cursor"]}
    ).json()
    assert len(rest["items"]) == 3
    assert rest["next_cursor"] is None
    assert {i["external_id"] for i in page["items"] + rest["items"]} == {f"d{n}" for n in range(5)}
    even = api.get("/api/v1/knowledge/documents", params={"collection": "even"}).json()["items"]
    assert sorted(i["external_id"] for i in even) == ["d0", "d2", "d4"]
    one = api.get("/api/v1/knowledge/documents", params={"external_id": "d3"}).json()["items"]
    assert [i["title"] for i in one] == ["Doc 3"]
    pending = api.get("/api/v1/knowledge/documents", params={"status": "pending"}).json()["items"]
    assert len(pending) == 5  # no indexing job has run yet
    assert api.get("/api/v1/knowledge/documents", params={"status": "ready"}).json()["items"] == []
    assert api.get("/api/v1/knowledge/documents", params={"cursor": "nonsense"}).status_code == 422


async def test_search_filters_by_collection_and_metadata(
    api: httpx.Client, database: Database, settings: Settings
) -> None:
    api.post(
        "/api/v1/knowledge/documents",
        json={
            "title": "Returns",
            "text": RETURNS,
            "collection": "policies",
            "metadata": {"market": "eu"},
        },
    )
    api.post(
        "/api/v1/knowledge/documents",
        json={
            "title": "Returns US",
            "text": RETURNS.replace("30", "60"),
            "collection": "us",
            "metadata": {"market": "us"},
        },
    )
    await run_jobs(database, settings)
    in_policies = search(api, "return window", collection="policies")
    assert [r["title"] for r in in_policies] == ["Returns"]
    us = search(api, "return window", metadata={"market": "us"})
    assert [r["title"] for r in us] == ["Returns US"]
    assert search(api, "return window", collection="no-such-collection") == []


async def test_uploads_are_extracted_kept_and_downloadable(
    api: httpx.Client, database: Database, settings: Settings
) -> None:
    page = (
        b"<!doctype html><html><head><title>Care guide</title><script>alert(1)</script></head>"
        b"<body><h1>Care guide</h1><h2>Washing</h2>"
        b"<p>Wash linen at 40 degrees, inside out.</p></body></html>"
    )
    created = api.post(
        "/api/v1/knowledge/documents",
        files={"file": ("care.html", page, "text/html")},
        data={"external_id": "care", "metadata": '{"lang": "en"}'},
    )
    assert created.status_code == 202, created.text
    document = created.json()
    assert document["content_type"] == "html"
    assert document["title"] == "care.html"  # the file's name, not its <title>
    assert "alert(1)" not in document["text"]
    assert document["metadata"] == {"lang": "en"}
    download = api.get(f"/api/v1/knowledge/documents/{document['id']}/file")
    assert download.content == page
    assert download.headers["content-disposition"] == 'attachment; filename="care.html"'
    await run_jobs(database, settings)
    assert search(api, "what temperature for linen")[0]["document_id"] == document["id"]
    assert api.post(f"/api/v1/knowledge/documents/{document['id']}/reindex").status_code == 202


async def test_a_file_with_a_chinese_name_downloads_under_that_name(api: httpx.Client) -> None:
    # Was a 500: the header was built by hand and a header must be Latin-1.
    policy = "30天内无理由退货。".encode()
    created = api.post(
        "/api/v1/knowledge/documents",
        files={"file": ("退货政策.txt", io.BytesIO(policy), "text/plain")},
    )
    assert created.status_code == 202, created.text
    download = api.get(f"/api/v1/knowledge/documents/{created.json()['id']}/file")
    assert download.status_code == 200, download.text
    assert download.content == policy
    disposition = download.headers["content-disposition"]
    assert disposition == (
        "attachment; filename=\".txt\"; filename*=UTF-8''%E9%80%80%E8%B4%A7%E6%94%BF%E7%AD%96.txt"
    )
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == "退货政策.txt"


def _encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("secret-password")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("filename", "content", "status", "words"),
    [
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog", 422, "damaged"),
        ("secret.pdf", None, 422, "password"),
        ("empty.txt", b"", 422, "No text"),
        ("photo.txt", bytes(range(256)) * 4, 422, "not supported"),
    ],
)
async def test_bad_files_get_a_clear_error_and_leave_nothing(
    api: httpx.Client,
    database: Database,
    filename: str,
    content: bytes | None,
    status: int,
    words: str,
) -> None:
    data = content if content is not None else _encrypted_pdf()
    response = api.post(
        "/api/v1/knowledge/documents", files={"file": (filename, data, "application/octet-stream")}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words.lower() in response.json()["detail"].lower()
    assert await _count(database, Item) == 0
    assert await _count(database, ItemFile) == 0


@pytest.mark.parametrize(
    ("fields", "filename", "status", "field"),
    [
        ({"title": "Care\x00guide"}, "care.txt", 422, "title"),
        ({"metadata": '{"note": "a\\u0000b"}'}, "care.txt", 422, "metadata.note"),
        ({"metadata": "[" * 5000 + "]" * 5000}, "care.txt", 400, None),
        ({"metadata": "{not json"}, "care.txt", 422, "metadata"),
    ],
)
async def test_an_uploads_form_fields_are_checked_like_any_other_input(
    api: httpx.Client,
    database: Database,
    fields: dict[str, str],
    filename: str,
    status: int,
    field: str | None,
) -> None:
    # The edge checks JSON and urlencoded bodies; a multipart upload's text fields and
    # file name reach the route unchecked, and NUL in them once made PostgreSQL fail (500).
    response = api.post(
        "/api/v1/knowledge/documents",
        data=fields,
        files={"file": (filename, b"Wash at 30 degrees.", "text/plain")},
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json().get("field") == field
    assert await _count(database, Item) == 0


async def test_an_uploads_file_name_is_checked_like_any_other_input(
    api: httpx.Client, database: Database
) -> None:
    # Written out by hand: clients percent-encode a NUL in a file name, a hostile one need not.
    body = (
        b"--b\r\n"
        b'Content-Disposition: form-data; name="file"; filename="care\x00.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n"
        b"Wash at 30 degrees.\r\n"
        b"--b--\r\n"
    )
    response = api.post(
        "/api/v1/knowledge/documents",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "filename"
    assert await _count(database, Item) == 0


async def test_files_over_the_upload_limit_are_refused(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    from cybergine.app import create_app

    _, key = await make_organisation_with_key(database)
    small = settings.model_copy(update={"max_upload_bytes": 2048})
    with (
        LiveServer(create_app(small, run_worker=False)) as server,
        server.client(headers={"authorization": f"Bearer {key}"}) as client,
    ):
        response = client.post(
            "/api/v1/knowledge/documents",
            files={"file": ("big.txt", b"word " * 1000, "text/plain")},
        )
    assert response.status_code == 413
    assert await _count(database, Item) == 0


async def test_viewers_search_but_cannot_change_the_knowledge_base(
    live_server: LiveServer, database: Database
) -> None:
    organisation, _ = await make_organisation_with_key(database)
    viewer_key = await make_api_key(database, organisation.id, Role.VIEWER)
    with live_server.client(headers={"authorization": f"Bearer {viewer_key}"}) as viewer:
        assert (
            viewer.post("/api/v1/knowledge/search", json={"query": "anything"}).status_code == 200
        )
        assert (
            viewer.post("/api/v1/knowledge/documents", json={"title": "x", "text": "y"}).status_code
            == 403
        )


async def test_search_never_returns_another_organisations_content(
    api: httpx.Client, live_server: LiveServer, database: Database, settings: Settings
) -> None:
    api.post(
        "/api/v1/knowledge/documents",
        json={"title": "Secret recipe", "text": "Our secret sauce uses saffron."},
    )
    _, other_key = await make_organisation_with_key(database, name="Other")
    await run_jobs(database, settings)
    with live_server.client(headers={"authorization": f"Bearer {other_key}"}) as other:
        assert search(other, "secret sauce saffron") == []


async def test_lexical_only_mode_works_without_a_model(
    database: Database, settings: Settings
) -> None:
    from cybergine.app import create_app

    lexical = settings.model_copy(update={"embeddings": "none"})
    _, key = await make_organisation_with_key(database)
    with (
        LiveServer(create_app(lexical, run_worker=False)) as server,
        server.client(headers={"authorization": f"Bearer {key}"}) as client,
    ):
        created = client.post(
            "/api/v1/knowledge/documents", json={"title": "Shipping", "text": SHIPPING}
        ).json()
        await run_jobs(database, lexical)
        (best,) = search(client, "express delivery", explain=True)
    assert best["document_id"] == created["id"]
    assert best["explain"]["dense"] is None
    async with database.transaction() as session:
        assert (await session.execute(select(Chunk.embedding))).scalars().all() == [None]


@pytest.mark.parametrize(
    "body",
    [{}, {"query": ""}, {"query": "x", "k": 0}, {"query": "x", "k": 500}, {"query": "x" * 5000}],
)
def test_bad_search_requests_are_422(api: httpx.Client, body: dict[str, object]) -> None:
    assert api.post("/api/v1/knowledge/search", json=body).status_code == 422


async def test_an_openai_compatible_embeddings_endpoint_can_be_used(
    database: Database, settings: Settings
) -> None:
    from pydantic import SecretStr

    from cybergine.app import create_app
    from tests.support.openai_simulator import OpenAISimulator

    _, key = await make_organisation_with_key(database)
    with OpenAISimulator() as simulator:
        remote = settings.model_copy(
            update={
                "embeddings": "openai",
                "openai_base_url": simulator.base_url,
                "openai_api_key": SecretStr(simulator.api_key or ""),
            }
        )
        with (
            LiveServer(create_app(remote, run_worker=False)) as server,
            server.client(headers={"authorization": f"Bearer {key}"}) as client,
        ):
            created = client.post(
                "/api/v1/knowledge/documents", json={"title": "Shipping", "text": SHIPPING}
            ).json()
            await run_jobs(database, remote)
            (best,) = search(client, "express delivery next day", explain=True)
        assert simulator.received("/v1/embeddings")
    assert best["document_id"] == created["id"]
    assert best["explain"]["dense"] is not None
    async with database.transaction() as session:
        models = set((await session.execute(select(Chunk.embedding_model))).scalars())
    assert models == {"openai:text-embedding-3-small"}
