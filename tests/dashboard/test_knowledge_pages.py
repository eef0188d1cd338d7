"""The knowledge base in the dashboard, over real HTTP: uploads (one file, several, bad
ones refused with their reason), a document's page (rename, index again, download the
original, delete), collections, Q&A pairs with their alternative phrasings, imports of
CSV and JSON Lines with the bad rows reported, and what a viewer may not do."""

from __future__ import annotations

import json
import re
import uuid

import httpx
from markupsafe import escape
from sqlalchemy import select, update

from cybergine.accounts.models import Role
from cybergine.db.engine import Database
from cybergine.knowledge.models import Collection, Item, ItemKind, ItemStatus
from cybergine.settings import Settings
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, add_member, make_organisation
from tests.support.jobs import run_jobs

RETURNS = b"Returns\n\nYou can return any unworn item within 30 days of delivery."
SHIPPING = b"# Shipping\n\nWe ship to the EU and the UK in 3 to 5 working days."
NOT_TEXT = bytes(range(256)) * 4


async def _owner(browser: Browser, database: Database) -> uuid.UUID:
    organisation, owner = await make_organisation(database, name="Linen Shop")
    assert browser.sign_in(owner.email, PASSWORD).status_code == 303
    return organisation.id


def _upload(
    browser: Browser,
    files: list[tuple[str, bytes]],
    *,
    collection: str = "default",
    as_json: bool = False,
) -> httpx.Response:
    token = browser.csrf("/knowledge")
    headers = {"accept": "application/json"} if as_json else {}
    return browser.http.post(
        "/knowledge/upload",
        data={"csrf_token": token, "collection": collection},
        files=[("file", (name, data, "application/octet-stream")) for name, data in files],
        headers=headers,
    )


async def _items(database: Database, kind: ItemKind) -> list[Item]:
    async with database.transaction() as session:
        found = await session.execute(select(Item).where(Item.kind == kind).order_by(Item.id))
        return list(found.scalars())


def _document_id(page: str, title: str) -> str:
    match = re.search(r'href="/knowledge/documents/([0-9a-f-]{36})">' + re.escape(title), page)
    assert match, f"no link to {title!r}"
    return match.group(1)


async def test_one_file_is_uploaded_indexed_and_shown_ready(
    browser: Browser, database: Database, settings: Settings
) -> None:
    await _owner(browser, database)
    response = _upload(browser, [("returns.txt", RETURNS)])
    assert response.status_code == 303
    assert response.headers["location"] == "/knowledge?notice=uploaded"

    page = browser.get("/knowledge").text
    assert "returns.txt" in page
    assert 'data-status="pending"' in page
    assert "every 2s" in page  # the list keeps asking while something is queued

    await run_jobs(database, settings)
    part = browser.get("/knowledge/documents")
    assert part.status_code == 200
    assert 'data-status="ready"' in part.text
    assert "every 2s" not in part.text  # settled: the list stops asking


async def test_several_files_at_once_each_get_their_own_outcome(
    browser: Browser, database: Database
) -> None:
    await _owner(browser, database)
    response = _upload(
        browser,
        [("returns.txt", RETURNS), ("shipping.md", SHIPPING), ("photo.txt", NOT_TEXT)],
    )
    # One refused: the page comes back with each file's outcome, the good ones kept.
    assert response.status_code == 422
    results = re.findall(
        r'<li class="upload-file (upload-\w+)">\s*<span class="upload-name">([^<]+)', response.text
    )
    assert results == [
        ("upload-accepted", "returns.txt"),
        ("upload-accepted", "shipping.md"),
        ("upload-refused", "photo.txt"),
    ]
    assert "not supported" in response.text
    assert len(await _items(database, ItemKind.DOCUMENT)) == 2

    # The page's script sends one file a request and reads JSON.
    one = _upload(browser, [("more.txt", RETURNS)], as_json=True)
    assert one.status_code == 200
    (result,) = one.json()["results"]
    assert result["accepted"] is True
    assert result["url"].startswith("/knowledge/documents/")
    bad = _upload(browser, [("photo.txt", NOT_TEXT)], as_json=True)
    assert bad.status_code == 422
    assert "not supported" in bad.json()["results"][0]["reason"]
    none = _upload(browser, [], as_json=True)
    assert none.json()["error"] == "Choose one or more files to upload."


async def test_a_failed_document_shows_why(browser: Browser, database: Database) -> None:
    await _owner(browser, database)
    _upload(browser, [("returns.txt", RETURNS)])
    (item,) = await _items(database, ItemKind.DOCUMENT)
    async with database.transaction() as session:
        await session.execute(
            update(Item)
            .where(Item.id == item.id)
            .values(
                status=ItemStatus.FAILED,
                error="ExtractionBusy: Every reader is busy; try again in a minute.",
            )
        )
    listing = browser.get("/knowledge").text
    assert 'data-status="failed"' in listing
    assert "Every reader is busy; try again in a minute." in listing
    assert "ExtractionBusy" not in listing  # the reason, not the exception's name
    page = browser.get(f"/knowledge/documents/{item.id}").text
    assert "Failed" in page
    assert "Every reader is busy; try again in a minute." in page


async def test_a_document_is_renamed_indexed_again_downloaded_and_deleted(
    browser: Browser, database: Database, settings: Settings
) -> None:
    await _owner(browser, database)
    name = "Rücksendung 30 Tage.txt"
    _upload(browser, [(name, RETURNS)])
    await run_jobs(database, settings)
    (item,) = await _items(database, ItemKind.DOCUMENT)
    path = f"/knowledge/documents/{item.id}"

    page = browser.get(path)
    assert page.status_code == 200
    assert "Ready" in page.text
    assert "Passages" in page.text

    saved = browser.post(
        path, {"title": "Returns policy", "collection": "policies"}, csrf=browser.csrf()
    )
    assert saved.status_code == 303
    page = browser.get(path).text
    assert '<h1 class="kb-document-title">Returns policy</h1>' in page
    assert 'value="policies"' in page
    assert "Queued" in page  # a new title is indexed again
    await run_jobs(database, settings)

    too_long = browser.post(
        path, {"title": "x" * 501, "collection": "policies"}, csrf=browser.csrf()
    )
    assert too_long.status_code == 422
    assert 'aria-invalid="true" aria-describedby="title-error"' in too_long.text
    assert 'id="title-error"' in too_long.text
    assert "x" * 501 in too_long.text  # what was typed is kept

    again = browser.post(f"{path}/reindex", csrf=browser.csrf(path))
    assert again.status_code == 303
    assert "Queued" in browser.get(path).text
    await run_jobs(database, settings)
    assert "Ready" in browser.get(path).text

    download = browser.get(f"{path}/file")
    assert download.status_code == 200
    assert download.content == RETURNS
    assert download.headers["content-disposition"].startswith("attachment;")
    assert (
        "filename*=UTF-8''R%C3%BCcksendung%2030%20Tage.txt"
        in download.headers["content-disposition"]
    )

    deleted = browser.post(f"{path}/delete", csrf=browser.csrf(path))
    assert deleted.status_code == 303
    assert browser.get(path).status_code == 404
    assert await _items(database, ItemKind.DOCUMENT) == []


async def test_documents_are_filtered_by_collection_and_paged(
    browser: Browser, database: Database
) -> None:
    await _owner(browser, database)
    _upload(browser, [(f"page-{n:02}.txt", RETURNS) for n in range(15)], collection="one")
    _upload(browser, [(f"other-{n:02}.txt", SHIPPING) for n in range(15)], collection="two")
    async with database.transaction() as session:
        collections = {c.name: c.id for c in (await session.execute(select(Collection))).scalars()}

    first = browser.get("/knowledge").text
    assert first.count('data-testid="document-row"') == 25
    cursor = re.search(r'href="/knowledge\?cursor=([A-Za-z0-9_-]+)"', first)
    assert cursor
    second = browser.get(f"/knowledge?cursor={cursor.group(1)}").text
    assert second.count('data-testid="document-row"') == 5
    assert "Newest documents" in second

    only_one = browser.get(f"/knowledge?collection={collections['one']}").text
    assert only_one.count('data-testid="document-row"') == 15
    assert "other-" not in only_one.split('id="documents"', 1)[1]
    assert browser.get("/knowledge?collection=not-an-id").status_code == 422


async def test_collections_are_created_and_deleted_with_what_they_hold(
    browser: Browser, database: Database
) -> None:
    await _owner(browser, database)
    created = browser.post(
        "/knowledge/collections", {"name": "Care guides"}, csrf_from="/knowledge"
    )
    assert created.status_code == 303
    twice = browser.post("/knowledge/collections", {"name": "Care guides"}, csrf_from="/knowledge")
    assert twice.status_code == 422
    assert 'aria-describedby="new-collection-error"' in twice.text
    assert 'value="Care guides"' in twice.text

    _upload(browser, [("care.txt", RETURNS)], collection="Care guides")
    async with database.transaction() as session:
        collection = await session.scalar(
            select(Collection).where(Collection.name == "Care guides")
        )
    assert collection is not None
    page = browser.get("/knowledge").text
    assert "Delete the collection “Care guides” with its 1 documents" in page
    deleted = browser.post(f"/knowledge/collections/{collection.id}/delete", csrf=browser.csrf())
    assert deleted.status_code == 303
    assert await _items(database, ItemKind.DOCUMENT) == []


async def test_qa_pairs_are_added_edited_and_deleted_with_their_alternatives(
    browser: Browser, database: Database, settings: Settings
) -> None:
    await _owner(browser, database)
    form = {
        "question": "Can I return an item?",
        "alternatives": "Can I send it back?\n\n  How do returns work?  \n",
        "answer": "Yes, within 30 days of delivery.",
        "collection": "policies",
    }
    missing = browser.post("/knowledge/qa", {**form, "answer": "  "}, csrf_from="/knowledge/qa")
    assert missing.status_code == 422
    assert 'aria-describedby="answer-error"' in missing.text
    assert "Answer cannot be empty." in missing.text
    assert 'value="Can I return an item?"' in missing.text  # kept
    assert "How do returns work?" in missing.text

    assert browser.post("/knowledge/qa", form, csrf_from="/knowledge/qa").status_code == 303
    (pair,) = await _items(database, ItemKind.QA)
    assert pair.alternatives == ["Can I send it back?", "How do returns work?"]
    listing = browser.get("/knowledge/qa").text
    assert "Also asked as: Can I send it back? · How do returns work?" in listing
    await run_jobs(database, settings)
    assert 'data-status="ready"' in browser.get("/knowledge/qa/rows").text

    path = f"/knowledge/qa/{pair.id}"
    edit = browser.get(path).text
    assert "Can I send it back?\nHow do returns work?</textarea>" in edit
    changed = {**form, "alternatives": "Can I send it back?\nIs there a return window?"}
    assert browser.post(path, changed, csrf=browser.csrf()).status_code == 303
    (pair,) = await _items(database, ItemKind.QA)
    assert pair.alternatives == ["Can I send it back?", "Is there a return window?"]
    assert pair.status is ItemStatus.PENDING  # indexed again

    assert browser.post(f"{path}/delete", csrf=browser.csrf(path)).status_code == 303
    assert await _items(database, ItemKind.QA) == []
    assert browser.get(path).status_code == 404


def _import(browser: Browser, name: str, content: bytes, *, htmx: bool = False) -> httpx.Response:
    token = browser.csrf("/knowledge/qa")
    return browser.http.post(
        "/knowledge/qa/import",
        data={"csrf_token": token, "collection": "faq"},
        files={"file": (name, content, "application/octet-stream")},
        headers={"hx-request": "true"} if htmx else {},
    )


async def test_csv_and_jsonl_imports_keep_good_rows_and_report_bad_ones(
    browser: Browser, database: Database
) -> None:
    await _owner(browser, database)
    rows = (
        "question,answer,alternatives,external_id\n"
        "Do you ship abroad?,Yes: the EU and the UK.,Ship to Spain?|Ship to France?,ship\n"
        "No answer here,,,\n"
        '"Gift wrap?","Yes, for 3 euros.",,gift\n'
    )
    response = _import(browser, "faq.csv", rows.encode())
    assert response.status_code == 200
    assert "Imported 2 new and updated 0; 1 row refused." in response.text
    assert re.search(r"<td>3</td><td>Answer cannot be empty.</td>", response.text)
    pairs = {p.question: p for p in await _items(database, ItemKind.QA)}
    assert set(pairs) == {"Do you ship abroad?", "Gift wrap?"}
    assert pairs["Do you ship abroad?"].alternatives == ["Ship to Spain?", "Ship to France?"]

    lines = [
        json.dumps(
            {"question": "Do you ship abroad?", "answer": "Worldwide now.", "external_id": "ship"}
        ),
        "{not json",
        json.dumps({"title": "Care guide", "text": "Wash at 40 degrees."}),
        json.dumps(["a list"]),
        json.dumps(
            {
                "question": "Opening hours?",
                "answer": "9 to 5.",
                "alternatives": ["When are you open?"],
            }
        ),
    ]
    response = _import(browser, "faq.jsonl", "\n".join(lines).encode(), htmx=True)
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="import-report"')  # the report alone
    assert response.headers["hx-trigger"] == "knowledge-refresh"
    assert "Imported 2 new and updated 1; 2 rows refused." in response.text
    assert "<td>2</td><td>this line is not valid JSON.</td>" in response.text
    assert "<td>4</td>" in response.text
    pairs = {p.question: p for p in await _items(database, ItemKind.QA)}
    assert pairs["Do you ship abroad?"].body == "Worldwide now."
    assert "Opening hours?" in pairs
    assert [d.title for d in await _items(database, ItemKind.DOCUMENT)] == ["Care guide"]

    refused = _import(browser, "faq.csv", b"colour,size\nred,9\n")
    assert refused.status_code == 422
    assert "names its columns" in refused.text
    assert 'aria-invalid="true" aria-describedby="import-error"' in refused.text


async def test_a_viewer_reads_but_cannot_change_anything(
    browser: Browser, database: Database
) -> None:
    organisation_id = await _owner(browser, database)
    _upload(browser, [("returns.txt", RETURNS)])
    browser.post("/knowledge/qa", {"question": "Q?", "answer": "A."}, csrf_from="/knowledge/qa")
    (document,) = await _items(database, ItemKind.DOCUMENT)
    (pair,) = await _items(database, ItemKind.QA)
    viewer, _ = await add_member(database, organisation_id, Role.VIEWER)
    reader = Browser(str(browser.http.base_url))
    try:
        assert reader.sign_in(viewer.email, PASSWORD).status_code == 303
        page = reader.get("/knowledge")
        assert page.status_code == 200
        assert "returns.txt" in page.text
        assert 'action="/knowledge/upload"' not in page.text
        assert 'action="/knowledge/collections"' not in page.text
        detail = reader.get(f"/knowledge/documents/{document.id}").text
        assert "Download the original" in detail
        assert "/delete" not in detail
        assert "<textarea" not in reader.get(f"/knowledge/qa/{pair.id}").text
        token = reader.csrf("/knowledge")
        for path in (
            "/knowledge/upload",
            "/knowledge/collections",
            f"/knowledge/documents/{document.id}",
            f"/knowledge/documents/{document.id}/reindex",
            f"/knowledge/documents/{document.id}/delete",
            "/knowledge/qa",
            "/knowledge/qa/import",
            f"/knowledge/qa/{pair.id}",
            f"/knowledge/qa/{pair.id}/delete",
        ):
            response = reader.http.post(path, data={"csrf_token": token, "title": "x"})
            assert response.status_code == 403, path
    finally:
        reader.close()
    assert len(await _items(database, ItemKind.DOCUMENT)) == 1
    assert len(await _items(database, ItemKind.QA)) == 1


async def test_hostile_names_and_text_are_shown_as_text(
    browser: Browser, database: Database
) -> None:
    await _owner(browser, database)
    # (No double quotes: HTTP clients send those percent-encoded in a multipart name.)
    hostile = "<img src=x onerror=alert(1)>.txt"
    _upload(browser, [(hostile, RETURNS)])
    _upload(browser, [(hostile, NOT_TEXT)], as_json=True)
    browser.post(
        "/knowledge/qa",
        {
            "question": "<script>alert(2)</script>?",
            "answer": "<b>bold</b>",
            "collection": "<i>c</i>",
        },
        csrf_from="/knowledge/qa",
    )
    refused = _upload(browser, [(hostile, NOT_TEXT)])
    for page in (
        browser.get("/knowledge").text,
        browser.get("/knowledge/qa").text,
        refused.text,
    ):
        assert "<img src=x" not in page
        assert "<script>alert(2)" not in page
        assert "<b>bold</b>" not in page
        assert "<i>c</i>" not in page
    listing = browser.get("/knowledge").text
    assert str(escape(hostile)) in listing
    assert str(escape(hostile)) in refused.text
    (document,) = await _items(database, ItemKind.DOCUMENT)
    detail = browser.get(f"/knowledge/documents/{document.id}").text
    assert "<img src=x" not in detail
