"""The retrieval tester over real HTTP: the passages an assistant reads for a question, in
the search's order, with their scores and the grounding threshold line; only the caller's
own collections and assistants can be searched; a viewer may use it."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from cybergine.accounts.models import Role
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, add_member, make_api_key, make_organisation
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

DOCUMENTS = {
    "Returns": "You can return any unworn item within 30 days of delivery for a refund.",
    "Shipping": "We ship to the EU and the UK. Express delivery arrives the next working day.",
    "Gift cards": "Gift cards never expire and can be used in our shops and online.",
    "Opening hours": "Our shop in Lyon opens at nine and closes at seven, Monday to Saturday.",
}
QUESTION = "how many days do I have to return something?"
_ITEM = re.compile(r'data-testid="tester-result" data-item-id="([0-9a-f-]+)"')


@dataclass
class Shop:
    organisation_id: uuid.UUID
    owner_email: str
    api: httpx.Client


@pytest.fixture
async def shop(
    live_server: LiveServer, database: Database, settings: Settings
) -> AsyncIterator[Shop]:
    organisation, owner = await make_organisation(database, name="Tea House")
    key = await make_api_key(database, organisation.id)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        for title, body in DOCUMENTS.items():
            collection = "policies" if title == "Returns" else "default"
            created = api.post(
                "/api/v1/knowledge/documents",
                json={"title": title, "text": body, "collection": collection},
            )
            assert created.status_code == 202, created.text
        await run_jobs(database, settings)
        yield Shop(organisation.id, owner.email, api)


def _tester(browser: Browser, question: str, search_in: str = "") -> httpx.Response:
    return browser.get("/knowledge/tester?" + urlencode({"q": question, "search_in": search_in}))


def _explained(shop: Shop, **options: Any) -> list[dict[str, Any]]:
    response = shop.api.post(
        "/api/v1/knowledge/search", json={"query": QUESTION, "k": 5, "explain": True, **options}
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def _collection_id(shop: Shop, name: str) -> str:
    collections = shop.api.get("/api/v1/knowledge/collections").json()
    return str(next(c["id"] for c in collections if c["name"] == name))


async def test_results_are_listed_in_order_with_scores_and_the_threshold_line(
    shop: Shop, browser: Browser
) -> None:
    browser.sign_in(shop.owner_email, PASSWORD)
    empty = browser.get("/knowledge/tester")
    assert empty.status_code == 200
    assert 'data-testid="tester-results"' not in empty.text

    page = _tester(browser, QUESTION)
    assert page.status_code == 200, page.text
    expected = _explained(shop)
    shown = _ITEM.findall(page.text)
    assert shown == [r["document_id"] for r in expected]  # the search's own order

    # Each row shows the fused, dense and lexical scores the search computed.
    rows = page.text.split('data-testid="tester-result"')[1:]
    for row, result in zip(rows, expected, strict=True):
        assert f'data-score="fused">{result["score"]:.3f}<' in row
        assert f'data-score="dense">{result["explain"]["dense"]["score"]:.3f}' in row
        assert f'data-score="lexical">{result["explain"]["lexical"]["score"]:.2f}' in row
        assert html.escape(result["title"]) in row
        assert f'href="/knowledge/documents/{result["document_id"]}"' in row
        used = "Used for answers" in row
        assert used is result["explain"]["grounded"]

    # The line sits above the first result under the threshold (or after them all).
    grounded = [r["explain"]["grounded"] for r in expected]
    assert grounded[0], "the returns policy answers the question"
    line = page.text.index('data-testid="threshold-line"')
    first_under = grounded.index(False) if False in grounded else len(grounded)
    positions = [page.text.index(f'data-item-id="{r["document_id"]}"') for r in expected]
    assert all(position < line for position in positions[:first_under])
    assert all(position > line for position in positions[first_under:])
    assert "answers below this line are not used" in page.text
    assert "Returns" in page.text.split('data-testid="tester-result"')[1]


async def test_a_collection_or_an_assistant_narrows_the_search(
    shop: Shop, browser: Browser
) -> None:
    assistant = shop.api.post(
        "/api/v1/assistants", json={"name": "Mia", "knowledge_collections": ["default"]}
    ).json()
    browser.sign_in(shop.owner_email, PASSWORD)
    policies = _collection_id(shop, "policies")

    in_policies = _tester(browser, QUESTION, f"collection:{policies}")
    assert in_policies.status_code == 200
    assert _ITEM.findall(in_policies.text) == [
        r["document_id"] for r in _explained(shop, collection="policies")
    ]
    assert len(_ITEM.findall(in_policies.text)) == 1
    assert f'value="collection:{policies}" selected' in in_policies.text

    as_mia = _tester(browser, QUESTION, f"assistant:{assistant['id']}")
    assert as_mia.status_code == 200
    expected = _explained(shop, assistant_id=assistant["id"])
    assert _ITEM.findall(as_mia.text) == [r["document_id"] for r in expected]
    assert "Returns" not in [r["title"] for r in expected]  # not in Mia's collections
    assert "the collections this assistant answers from" in as_mia.text


async def test_another_organisations_collection_or_assistant_cannot_be_searched(
    shop: Shop, browser: Browser, live_server: LiveServer, database: Database
) -> None:
    other, _ = await make_organisation(database, name="Rival")
    other_key = await make_api_key(database, other.id)
    with live_server.client(headers={"authorization": f"Bearer {other_key}"}) as rival:
        rival.post(
            "/api/v1/knowledge/documents",
            json={"title": "Secret", "text": "Our secret returns policy.", "collection": "secret"},
        )
        secret = next(c["id"] for c in rival.get("/api/v1/knowledge/collections").json())
        rival_assistant = rival.post("/api/v1/assistants", json={"name": "Rex"}).json()
    browser.sign_in(shop.owner_email, PASSWORD)

    for search_in in (f"collection:{secret}", f"assistant:{rival_assistant['id']}", "nonsense"):
        refused = _tester(browser, QUESTION, search_in)
        assert refused.status_code == 404, search_in
        assert 'data-testid="tester-result"' not in refused.text
        assert 'aria-invalid="true" aria-describedby="tester-in-error"' in refused.text
        assert 'id="tester-in-error"' in refused.text
        assert "Secret" not in refused.text
        assert "Rex" not in refused.text


async def test_a_blank_question_is_refused_next_to_the_field(shop: Shop, browser: Browser) -> None:
    browser.sign_in(shop.owner_email, PASSWORD)
    refused = _tester(browser, "   ")
    assert refused.status_code == 422
    assert 'id="tester-q-error"' in refused.text
    assert 'aria-describedby="tester-q-error"' in refused.text


async def test_a_viewer_can_use_it_and_a_stranger_cannot(
    shop: Shop, browser: Browser, second_browser: Browser, database: Database
) -> None:
    viewer, _ = await add_member(database, shop.organisation_id, Role.VIEWER)
    browser.sign_in(viewer.email, PASSWORD)
    page = _tester(browser, QUESTION)
    assert page.status_code == 200
    assert _ITEM.findall(page.text)
    anonymous = _tester(second_browser, QUESTION)
    assert anonymous.status_code in (302, 303, 401)


async def test_without_embeddings_the_dense_scores_are_dashes_with_a_note(
    shop: Shop, database: Database, settings: Settings
) -> None:
    from cybergine.app import create_app

    lexical = settings.model_copy(update={"embeddings": "none"})
    with LiveServer(create_app(lexical, run_worker=False)) as server:
        person = Browser(server.url)
        try:
            person.sign_in(shop.owner_email, PASSWORD)
            page = _tester(person, QUESTION)
        finally:
            person.close()
    assert page.status_code == 200
    assert 'data-testid="dense-off"' in page.text
    assert _ITEM.findall(page.text)
    assert page.text.count('data-score="dense">&mdash;') == len(_ITEM.findall(page.text))
