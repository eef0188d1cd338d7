"""Every dashboard page, as a shop owner's browser shows it: no serious or critical axe
violation, no error in the console, and nothing to scroll sideways at phone width.

The routes are walked from the dashboard's routers, so a new page is scanned without
anyone remembering to add it: its id parameters are filled from the demo shop (a
parameter with no value here fails the test), and a route that answers a fragment rather
than a page must be declared one below.
"""

from __future__ import annotations

import re
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from playwright.sync_api import Browser, Page

from cybergine.accounts.models import ApiKey, Membership, Role
from cybergine.accounts.principal import Principal
from cybergine.accounts.service import api_keys
from cybergine.assistants.models import Assistant
from cybergine.catalog import service as catalog
from cybergine.catalog.shape import read_product
from cybergine.channels.whatsapp.models import WhatsAppNumber
from cybergine.conversations.models import Channel, Direction
from cybergine.dashboard.routes import routers
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.demo import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD
from cybergine.knowledge import service as knowledge
from cybergine.knowledge.extract import extract
from cybergine.knowledge.models import Collection, Item, ItemKind
from cybergine.privacy import requests as privacy_requests
from cybergine.privacy.request_models import RequestChannel, RequestKind
from cybergine.settings import Settings
from tests.browser.conftest import run_async, sign_in
from tests.support.accessibility import (
    BLOCKING_IMPACTS,
    NETWORK_WATCH_SCRIPT,
    assert_accessible,
    axe_violations,
    console_errors,
    describe,
    horizontal_overflow,
    wait_until_quiet,
)
from tests.support.conversations import make_conversation, make_customer, make_message
from tests.support.jobs import run_jobs
from tests.support.processes import clean_env, run_cli, start_serve
from tests.support.server import LiveServer, free_port

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Parts of pages that HTMX fetches and swaps in: not documents of their own.
FRAGMENTS = {
    "/inbox/list",
    "/inbox/{conversation_id}/thread",
    "/dev/whatsapp/thread",
    "/getting-started/checklist",
    "/knowledge/documents",
    "/knowledge/documents/{document_id}/status",
    "/knowledge/qa/rows",
}
# Endless responses (Server-Sent Events).
STREAMS = {"/inbox/events"}
# JSON for the Shopify admin's embedded app, authenticated by App Bridge session tokens
# (no cookie), which the embedded page reads: not pages of the dashboard.
JSON_APIS = ("/shopify/api/",)
# Files, not pages: fetched with the browser's session and checked to arrive as what they
# are (a download to save, the tab's icon).
FILES = {
    "/knowledge/documents/{document_id}/file": "attachment",
    "/catalog/export.csv": "attachment",
    "/favicon.ico": "image/",
}
# Pages opened from an e-mailed link: walked signed out, with a token that is no longer
# valid, so what is scanned is the page that says so.
EMAILED_LINKS = {"token"}
SIGNED_OUT = {"/login", "/signup", "/password/forgot"}
# Pages only a developer's own embedded platform shows (`make run`): scanned on a real
# `cybergine serve`, in the test after the walk.
DEVELOPER_PAGES = {"/dev/outbox", "/dev/whatsapp"}
_PARAMETER = re.compile(r"{(\w+)(?::[^}]*)?}")


@dataclass
class Walk:
    ids: dict[str, str]
    pages: list[str] = field(default_factory=list)
    fragments: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _dashboard_gets() -> list[str]:
    paths = []
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and "GET" in route.methods:
                paths.append(route.path)
    return sorted(set(paths))


async def _seed_ids(database: Database, settings: Settings, organisation_id: str) -> dict[str, str]:
    """One of everything a page can be about, in the demo shop."""
    org = uuid.UUID(organisation_id)
    async with database.transaction() as session:
        scope = TenantScope(session, org)
        data = b"Shipping: orders leave our warehouse within two working days."
        document = await knowledge.upload_document(
            scope,
            data=data,
            filename="shipping.txt",
            declared_type="text/plain",
            extracted=extract(data, filename="shipping.txt", declared_type="text/plain"),
        )
        customer = await make_customer(
            session, org, channel=Channel.WEBCHAT, display_name="Robin Visitor"
        )
        conversation = await make_conversation(session, org, customer=customer)
        await make_message(session, conversation, text="Where is my parcel?")
        await make_message(
            session, conversation, direction=Direction.OUTBOUND, text="It left on Monday."
        )
        owner = (
            (await session.execute(scope.select(Membership).where(Membership.role == Role.OWNER)))
            .scalars()
            .first()
        )
        assert owner is not None
        principal = Principal(org, Role.OWNER, user_id=owner.user_id, email=DEMO_OWNER_EMAIL)
        await api_keys.create_api_key(scope, principal, name="Accessibility", role=Role.VIEWER)
        product = await catalog.create_product(
            scope,
            principal,
            read_product(
                {
                    "title": "Linen shirt",
                    "body_html": "<p>Light and cool.</p>",
                    "tags": "summer, linen",
                    "options": [{"name": "Size", "values": ["S", "M"]}],
                    "variants": [
                        {"option1": "S", "price": "49.90", "inventory_quantity": 2},
                        {"option1": "M", "price": "49.90", "inventory_quantity": 0},
                    ],
                    "images": [{"src": "https://cdn.example/linen.png", "alt": "The shirt"}],
                    "collections": ["Summer"],
                }
            ),
        )

        request = await privacy_requests.open_request(
            scope,
            principal.actor,
            kind=RequestKind.ACCESS,
            channel=RequestChannel.EMAIL,
            customer_id=customer.id,
        )

        async def first(statement: object) -> str:
            row = (await session.execute(statement)).scalars().first()  # type: ignore[call-overload]
            assert row is not None, statement
            return str(row.id)

        ids = {
            "assistant_id": await first(scope.select(Assistant)),
            "document_id": str(document.id),
            "qa_id": await first(scope.select(Item).where(Item.kind == ItemKind.QA)),
            "collection_id": await first(scope.select(Collection)),
            "number_id": await first(scope.select(WhatsAppNumber)),
            "customer_id": str(customer.id),
            "product_id": str(product.id),
            "request_id": str(request.id),
            "conversation_id": str(conversation.id),
            "membership_id": str(owner.id),
            "api_key_id": await first(scope.select(ApiKey)),
            "token": "expired-" + uuid.uuid4().hex,
        }
    await run_jobs(database, settings)
    return ids


def _url(path: str, ids: dict[str, str]) -> str | None:
    missing = [name for name in _PARAMETER.findall(path) if name not in ids]
    if missing:
        return None
    return _PARAMETER.sub(lambda match: ids[match.group(1)], path)


def _check(page: Page, base: str, path: str, walk: Walk, *, token_page: bool) -> None:
    url = _url(path, walk.ids)
    if url is None:
        walk.problems.append(f"{path}: no id for {_PARAMETER.findall(path)} in this test")
        return
    if path in FILES:
        answer = page.request.get(base + url)
        kind = answer.headers.get("content-disposition", answer.headers.get("content-type", ""))
        if answer.status != 200 or not kind.startswith(FILES[path]):
            walk.problems.append(f"{path}: {answer.status}, {kind!r}: not {FILES[path]}")
        walk.files.add(path)
        return
    page.set_viewport_size(DESKTOP)
    with console_errors(page) as errors:
        response = page.goto(base + url)
        wait_until_quiet(page)
        assert response is not None
        if response.status >= 400 and not token_page:
            walk.problems.append(f"{path}: answered {response.status}")
            return
        # The browser logs the page's own status; an expired link's page is meant to
        # answer 410.
        errors[:] = [e for e in errors if not (token_page and f"status of {response.status}" in e)]
        if not page.evaluate("() => document.querySelector('main') !== null"):
            walk.fragments.add(path)
            return
        walk.pages.append(path)
        for size, label in ((DESKTOP, "desktop"), (PHONE, "390 px")):
            page.set_viewport_size(size)
            blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING_IMPACTS]
            if blocking:
                walk.problems.append(f"{path} ({label}):\n{describe(blocking)}")
        overflow = horizontal_overflow(page)
        if overflow:
            walk.problems.append(f"{path}: scrolls {overflow} px sideways at 390 px wide")
    if errors:
        walk.problems.append(f"{path}: console errors: {errors}")


def _sign_in(page: Page, base: str) -> None:
    sign_in(page, base, DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD)


def test_every_dashboard_page_passes_the_accessibility_scan(
    chromium: Browser, platform: LiveServer, demo: str, database_url: str, settings: Settings
) -> None:
    async def seed() -> dict[str, str]:
        database = Database(database_url, pool_size=2)
        try:
            return await _seed_ids(database, settings, demo)
        finally:
            await database.dispose()

    walk = Walk(ids=run_async(seed()))
    paths = [
        path
        for path in _dashboard_gets()
        if path not in STREAMS
        and not path.startswith(tuple(DEVELOPER_PAGES))
        and not path.startswith(JSON_APIS)
    ]

    signed_out = chromium.new_context()
    signed_out.add_init_script(NETWORK_WATCH_SCRIPT)
    page = signed_out.new_page()
    for path in paths:
        token_page = set(_PARAMETER.findall(path)) & EMAILED_LINKS
        if path in SIGNED_OUT or token_page:
            _check(page, platform.url, path, walk, token_page=bool(token_page))
    signed_out.close()

    owner = chromium.new_context()
    owner.add_init_script(NETWORK_WATCH_SCRIPT)
    page = owner.new_page()
    _sign_in(page, platform.url)
    for path in paths:
        if path not in SIGNED_OUT and not set(_PARAMETER.findall(path)) & EMAILED_LINKS:
            _check(page, platform.url, path, walk, token_page=False)
    owner.close()

    assert not walk.problems, "\n".join(walk.problems)
    assert walk.fragments == FRAGMENTS - {"/dev/whatsapp/thread"}
    assert walk.files == set(FILES)
    # The walk reached the pages people use every day, not only the sign-in page.
    assert {"/", "/inbox", "/inbox/{conversation_id}", "/team", "/settings"} <= set(walk.pages)


def test_the_developer_pages_pass_the_accessibility_scan(chromium: Browser, tmp_path: Path) -> None:
    """The outbox and the WhatsApp sandbox of `make run`: an embedded platform with the
    demo shop and the Graph API simulator, opened from this machine."""
    env = clean_env(CYBERGINE_DATA_DIR=str(tmp_path / "data"))
    run_cli("demo", env=env)
    port = free_port()
    server = start_serve(port, env, tmp_path / "serve.log", "--whatsapp-simulator")
    walk = Walk(ids={})
    try:
        context = chromium.new_context()
        context.add_init_script(NETWORK_WATCH_SCRIPT)
        page = context.new_page()
        for path in sorted(DEVELOPER_PAGES):
            _check(page, f"http://127.0.0.1:{port}", path, walk, token_page=False)
        context.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert not walk.problems, "\n".join(walk.problems)
    assert sorted(walk.pages) == sorted(DEVELOPER_PAGES)


def test_the_scan_catches_a_page_that_breaks_the_rules(chromium: Browser) -> None:
    """The checker itself fails on what it is there to catch: an unlabelled field, text
    too faint to read, and an image without a text alternative."""
    context = chromium.new_context()
    page = context.new_page()
    page.set_content(
        "<!doctype html><html lang='en'><head><title>Bad</title></head><body><main>"
        "<h1>Bad page</h1><input type='text'>"
        "<p style='color:#ccc;background:#fff'>Faint words nobody can read</p>"
        "<img src='data:image/gif;base64,R0lGODlhAQABAAAAACw='>"
        "</main></body></html>"
    )
    ids = {violation["id"] for violation in axe_violations(page)}
    assert {"label", "color-contrast", "image-alt"} <= ids
    with pytest.raises(AssertionError, match="label"):
        assert_accessible(page, where="the bad page")
    context.close()
