"""A source's name is the one the merchant gave or the file's name, never the file's own
metadata; an offline answer quotes the passage without its title glued on."""

from __future__ import annotations

import httpx

from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.factories import make_organisation_with_key
from tests.support.hostile_files import build_pdf
from tests.support.jobs import run_jobs
from tests.support.knowledge import search
from tests.support.server import LiveServer

SHOP = "https://shop.example"
RETURNS_LINES = [
    "Returns are accepted within 30 days of delivery.",
    "Refunds reach your card within 5 working days.",
]
QUESTION = "How many days do I have to return an item?"


def _pdf_titled_about_blank(lines: list[str]) -> bytes:
    """One page of Helvetica text lines, with ``/Title (about:blank)`` in its Info
    dictionary, as browsers' "print to PDF" writes it."""
    operations = [
        f"BT /F1 12 Tf 72 {720 - 16 * number} Td ({line}) Tj ET"
        for number, line in enumerate(lines)
    ]
    stream = "\n".join(operations).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Title (about:blank) /Producer (Skia/PDF) >>",
    ]
    return build_pdf(objects, info=6)


def _upload(api: httpx.Client, **fields: str) -> dict[str, object]:
    created = api.post(
        "/api/v1/knowledge/documents",
        files={"file": ("returns.pdf", _pdf_titled_about_blank(RETURNS_LINES), "application/pdf")},
        data=fields,
    )
    assert created.status_code == 202, created.text
    document: dict[str, object] = created.json()
    return document


async def test_an_uploaded_pdf_is_named_by_its_file_not_its_metadata(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        document = _upload(api)
        named = _upload(api, title="Returns policy", external_id="named")
        await run_jobs(database, settings)
        results = search(api, QUESTION, k=5)
    assert document["title"] == "returns.pdf"
    assert named["title"] == "Returns policy"  # a title the merchant gives wins
    assert {r["title"] for r in results} == {"returns.pdf", "Returns policy"}
    assert all("about:blank" not in r["text"] for r in results)


async def test_the_widget_answer_names_the_file_and_starts_with_the_quote(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    _, key = await make_organisation_with_key(database)
    with (
        live_server.client(headers={"authorization": f"Bearer {key}"}) as api,
        live_server.client() as visitor,
    ):
        assistant = api.post("/api/v1/assistants", json={"name": "Mia", "allowed_origins": [SHOP]})
        assert assistant.status_code == 201, assistant.text
        _upload(api)
        await run_jobs(database, settings)

        widget_key = assistant.json()["widget_key"]
        started = visitor.post(
            "/widget/v1/session", json={"widget_key": widget_key}, headers={"Origin": SHOP}
        ).json()
        token = started["visitor_token"]
        sent = visitor.post(
            "/widget/v1/messages",
            json={"text": QUESTION, "client_id": "question-1"},
            headers={"Origin": SHOP, "Authorization": f"Bearer {token}"},
        )
        assert sent.status_code == 202, sent.text
        await run_jobs(database, settings)  # the reply job: the offline extractive answer
        history = visitor.post(
            "/widget/v1/session",
            json={"widget_key": widget_key, "visitor_token": token},
            headers={"Origin": SHOP},
        ).json()["messages"]

    (answer,) = [m for m in history if m["sender"] == "assistant"]
    assert answer["sources"] == [{"title": "returns.pdf", "url": None}]
    disclosure, _, body = answer["text"].partition("\n\n")
    assert "AI assistant" in disclosure
    assert body.startswith(RETURNS_LINES[0])  # the quote, with no title before it
    assert "about:blank" not in answer["text"]
    assert "returns.pdf" not in body
