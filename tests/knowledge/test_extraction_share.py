"""Each organisation's share of the file readers: its files are read one at a time, and
once its reading time is spent its uploads are refused with 429 and a Retry-After before
anything is read, while other organisations' uploads go on."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid

import httpx
import pytest
from sqlalchemy import func, select, update

from cybergine.accounts.models import ApiKey
from cybergine.db.engine import Database
from cybergine.knowledge.extraction_process import ExtractionBusy
from cybergine.knowledge.extraction_share import (
    MINIMUM_CHARGE,
    ExtractionShares,
    ExtractionShareUsed,
)
from cybergine.knowledge.models import Item
from cybergine.settings import Settings
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, make_organisation, make_organisation_with_key
from tests.support.process_memory import extraction_children
from tests.support.processes import wait_until
from tests.support.server import LiveServer
from tests.support.slow_documents import long_pdf


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_spent_budget_refuses_until_it_has_refilled() -> None:
    clock = Clock()
    shares = ExtractionShares(seconds_per_minute=3, wait_seconds=1, clock=clock)
    shop = uuid.uuid4()
    for _ in range(3):  # each file is charged at least a second
        async with shares.admitted(shop):
            pass
    with pytest.raises(ExtractionShareUsed) as refused:
        async with shares.admitted(shop):
            pass
    assert refused.value.status == 429
    assert refused.value.extra["retry_after"] >= 1
    # Another organisation is not held back by the first one's spending.
    async with shares.admitted(uuid.uuid4()):
        pass
    # 3 s per minute refill one file's second in 20 s.
    clock.now += 20
    async with shares.admitted(shop):
        pass


async def test_a_long_read_is_charged_its_time_and_waits_off_its_debt() -> None:
    clock = Clock()
    shares = ExtractionShares(seconds_per_minute=6, wait_seconds=1, clock=clock)
    shop = uuid.uuid4()
    async with shares.admitted(shop):
        clock.now += 12  # a 12 s read against a 6 s budget: 6 s in debt
    with pytest.raises(ExtractionShareUsed) as refused:
        async with shares.admitted(shop):
            pass
    # 6 s of debt at 0.1 s per second: paid off after 60 s, above zero after 61.
    assert refused.value.extra["retry_after"] == 61
    clock.now += 61
    async with shares.admitted(shop):
        pass


async def test_one_organisations_files_are_read_one_at_a_time() -> None:
    shares = ExtractionShares(seconds_per_minute=60, wait_seconds=5)
    shop = uuid.uuid4()
    inside = 0
    most = 0

    async def read() -> None:
        nonlocal inside, most
        async with shares.admitted(shop):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(read() for _ in range(5)))
    assert most == 1


async def test_a_file_waiting_too_long_for_its_turn_is_refused_as_busy() -> None:
    shares = ExtractionShares(seconds_per_minute=60, wait_seconds=0.05)
    shop = uuid.uuid4()
    release = asyncio.Event()

    async def hold() -> None:
        async with shares.admitted(shop):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    with pytest.raises(ExtractionBusy):
        async with shares.admitted(shop):
            pass
    release.set()
    await holder


def test_the_minimum_charge_is_a_second() -> None:
    # The figure the settings' description and the README promise.
    assert MINIMUM_CHARGE == 1.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"extraction_share_seconds_per_minute": 2.0})


async def test_past_its_share_an_organisations_upload_is_refused_before_it_is_read(
    live_server: LiveServer, database: Database
) -> None:
    _, shop_key = await make_organisation_with_key(database)
    _, other_key = await make_organisation_with_key(database)

    def client(key: str) -> httpx.Client:
        return httpx.Client(
            base_url=live_server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    with client(shop_key) as shop, client(other_key) as other:
        made = shop.post(
            "/api/v1/knowledge/documents",
            files={"file": ("note.txt", b"Opening hours: nine to five.", "text/plain")},
        )
        assert made.status_code == 202, made.text
        # Forms with no file: each is read (and refused with 422) while the share lasts,
        # then refused with 429 before it is read. A second per file, two per minute:
        # the time the requests take refills a little, so allow a few.
        answers = []
        for _ in range(5):
            answers.append(
                shop.post("/api/v1/knowledge/documents", files={"title": (None, "no file")})
            )
            if answers[-1].status_code == 429:
                break
        assert [a.status_code for a in answers[:-1]] == [422] * (len(answers) - 1)
        refused = answers[-1]
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("extraction-share-used")
        assert int(refused.headers["retry-after"]) >= 1
        # JSON documents are not read by the readers and are not held back.
        typed = shop.post("/api/v1/knowledge/documents", json={"title": "Hours", "text": "9-5"})
        assert typed.status_code == 202, typed.text
        # Another organisation's upload is read as usual.
        theirs = other.post(
            "/api/v1/knowledge/documents",
            files={"file": ("theirs.txt", b"Delivery takes two days.", "text/plain")},
        )
        assert theirs.status_code == 202, theirs.text


async def test_the_dashboards_upload_takes_the_same_share(
    browser: Browser, database: Database
) -> None:
    """The dashboard's upload (the page's script asks for JSON) is held to the same share
    as the API: past it, a 429 with a Retry-After that the script waits for."""
    _, owner = await make_organisation(database, name="Linen Shop")
    assert browser.sign_in(owner.email, PASSWORD).status_code == 303
    answers = []
    for n in range(5):
        token = browser.csrf("/knowledge")
        answers.append(
            browser.http.post(
                "/knowledge/upload",
                data={"csrf_token": token, "collection": "default"},
                files=[("file", (f"note-{n}.txt", b"Open nine to five.", "text/plain"))],
                headers={"accept": "application/json"},
            )
        )
        if answers[-1].status_code == 429:
            break
    assert [a.status_code for a in answers[:-1]] == [200] * (len(answers) - 1)
    refused = answers[-1]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "try again" in refused.json()["error"]


async def test_a_key_revoked_while_its_file_is_read_writes_nothing(
    live_server: LiveServer, database: Database
) -> None:
    """The caller is checked again in the transaction that writes: a key revoked while
    its upload was being read gets a 401, and no document is stored."""
    organisation, key = await make_organisation_with_key(database)
    document = long_pdf()  # a few seconds of reading
    answer: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(
            base_url=live_server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as client:
            answer.append(
                client.post(
                    "/api/v1/knowledge/documents",
                    files={"file": (document.filename, document.data, document.content_type)},
                )
            )

    sender = threading.Thread(target=send)
    sender.start()
    await asyncio.to_thread(
        wait_until, lambda: extraction_children(os.getpid()), 20, "no extraction started"
    )
    async with database.transaction() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.organisation_id == organisation.id)
            .values(revoked_at=func.now())
        )
    await asyncio.to_thread(sender.join, 60)
    assert answer, "the upload got no answer"
    assert answer[0].status_code == 401, answer[0].text
    async with database.transaction() as session:
        stored = await session.scalar(
            select(func.count()).select_from(Item).where(Item.organisation_id == organisation.id)
        )
    assert stored == 0
