"""The Overview's inline steps: an assistant created by its name alone (every other
setting the service's default), the website's address added from the checklist, the
snippet shown once a site is listed, the checklist alone for its refreshes; mistakes
shown next to their field; only people who may change the setup can do it."""

from __future__ import annotations

import html
import re
import uuid

from sqlalchemy import select

from cybergine.accounts.models import Role
from cybergine.assistants.models import Assistant
from cybergine.assistants.service import new_assistant
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.models import Collection, Item, ItemKind, ItemStatus
from cybergine.privacy.audit import AuditEvent
from tests.support.browser import Browser
from tests.support.factories import PASSWORD, add_member, make_api_key, make_organisation
from tests.support.server import LiveServer


async def _assistants(database: Database, organisation_id: uuid.UUID) -> list[Assistant]:
    async with database.transaction() as session:
        return list(
            (
                await session.execute(
                    select(Assistant).where(Assistant.organisation_id == organisation_id)
                )
            ).scalars()
        )


def _field(page: str, field_id: str) -> str:
    match = re.search(rf'<input[^>]*id="{field_id}"[^>]*>', page)
    assert match, f"no #{field_id} on the page"
    return match.group(0)


async def test_an_assistant_is_created_from_the_overview_by_its_name(
    browser: Browser, database: Database
) -> None:
    organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    page = browser.get("/")
    assert 'action="/getting-started/assistant"' in page.text
    assert 'for="setup-assistant_name"' in page.text

    created = browser.post("/getting-started/assistant", {"name": "Mia"}, csrf_from="/")
    assert created.status_code == 303
    assert created.headers["location"] == "/?notice=assistant-created"

    [assistant] = await _assistants(database, organisation.id)
    defaults = new_assistant()
    assert assistant.name == "Mia"
    for setting in ("persona", "instructions", "tone", "languages", "greeting", "llm_provider"):
        assert getattr(assistant, setting) == getattr(defaults, setting), setting
    async with database.transaction() as session:
        audited = await session.scalar(
            select(AuditEvent.action).where(
                AuditEvent.organisation_id == organisation.id,
                AuditEvent.target_id == str(assistant.id),
            )
        )
    assert audited == "assistant.created"

    # The step is done: no form for it any more; the next steps carry theirs.
    after = browser.get("/").text
    assert 'action="/getting-started/assistant"' not in after
    assert 'action="/knowledge/upload"' in after
    assert f'action="/assistants/{assistant.id}/try"' in after
    assert f'href="/assistants/{assistant.id}#model"' in after  # the offline note's link
    assert f'action="/getting-started/{assistant.id}/website"' in after


async def test_a_missing_or_taken_name_is_shown_next_to_the_field(
    browser: Browser, database: Database
) -> None:
    organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    empty = browser.post("/getting-started/assistant", {"name": "  "}, csrf_from="/")
    assert empty.status_code == 422
    field = _field(empty.text, "setup-assistant_name")
    assert 'aria-invalid="true"' in field
    assert 'aria-describedby="setup-assistant_name-error"' in field
    assert 'id="setup-assistant_name-error"' in empty.text

    assert browser.post("/getting-started/assistant", {"name": "Mia"}, csrf_from="/").is_redirect
    taken = browser.post("/getting-started/assistant", {"name": "Mia"}, csrf_from="/")
    assert taken.status_code == 422
    # The first assistant exists, so the step is done; the refusal still shows, by the
    # field, with what was typed.
    assert 'value="Mia"' in _field(taken.text, "setup-assistant_name")
    assert 'data-testid="setup-error-assistant_name"' in taken.text
    assert len(await _assistants(database, organisation.id)) == 1


async def test_the_website_is_added_from_the_overview_and_the_snippet_shown(
    browser: Browser, database: Database
) -> None:
    organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    browser.post("/getting-started/assistant", {"name": "Mia"}, csrf_from="/")
    [assistant] = await _assistants(database, organisation.id)
    website = f"/getting-started/{assistant.id}/website"

    wrong = browser.post(website, {"add": "shop.example/path"}, csrf_from="/")
    assert wrong.status_code == 422
    field = _field(wrong.text, "setup-website")
    assert 'aria-invalid="true"' in field
    assert "setup-website-error" in field
    assert 'value="shop.example/path"' in field
    empty = browser.post(website, {"add": " "}, csrf_from="/")
    assert empty.status_code == 422
    assert "Write your website&#39;s address" in empty.text
    assert 'id="setup-snippet"' not in empty.text

    added = browser.post(website, {"add": "https://shop.example"}, csrf_from="/")
    assert added.status_code == 303
    assert added.headers["location"] == "/?notice=origin-added"
    [assistant] = await _assistants(database, organisation.id)
    assert assistant.allowed_origins == ["https://shop.example"]

    page = browser.get("/").text
    assert 'class="checklist-step done" data-step="live"' in page
    snippet = re.search(r'<pre id="setup-snippet"[^>]*><code>(.*?)</code></pre>', page, re.S)
    assert snippet
    assert html.unescape(snippet.group(1)) == (
        f'<script src="{str(browser.http.base_url).rstrip("/")}/widget.js" '
        f'data-assistant="{assistant.widget_key}" async></script>'
    )
    assert 'data-copy="#setup-snippet"' in page


async def test_the_checklist_alone_refreshes_while_a_document_is_read(
    browser: Browser, live_server: LiveServer, database: Database
) -> None:
    organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    first = browser.get("/getting-started/checklist")
    assert first.status_code == 200
    assert "<main" not in first.text
    assert 'id="getting-started-block"' in first.text
    assert "every 2s" not in first.text

    async with database.transaction() as session:
        scope = TenantScope(session, organisation.id)
        collection = scope.add(Collection(name="default"))
        await session.flush()
        item = scope.add(
            Item(
                collection_id=collection.id,
                kind=ItemKind.QA,
                question="Do you ship to Canada?",
                body="Yes.",
                status=ItemStatus.PENDING,
            )
        )
    part = browser.get("/getting-started/checklist").text
    assert "every 2s" in part
    assert "Reading 1 document…" in part
    key = await make_api_key(database, organisation.id, Role.VIEWER)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        overview = api.get("/api/v1/overview").json()
    assert overview["documents_being_read"] == 1

    async with database.transaction() as session:
        item.status = ItemStatus.READY
        await session.merge(item)
    part = browser.get("/getting-started/checklist").text
    assert "every 2s" not in part
    assert 'class="checklist-step done" data-step="knowledge"' in part
    assert 'href="/knowledge/tester"' in part


async def test_a_viewer_sees_the_links_and_may_not_set_up(
    browser: Browser, database: Database
) -> None:
    organisation, _ = await make_organisation(database)
    viewer, _ = await add_member(database, organisation.id, Role.VIEWER)
    browser.sign_in(viewer.email, PASSWORD)
    page = browser.get("/").text
    assert 'href="/assistants"' in page
    assert "/getting-started/assistant" not in page
    assert 'action="/knowledge/upload"' not in page
    refused = browser.post("/getting-started/assistant", {"name": "Mia"}, csrf_from="/")
    assert refused.status_code == 403
    assert await _assistants(database, organisation.id) == []


async def test_the_inline_forms_need_the_csrf_token(browser: Browser, database: Database) -> None:
    organisation, owner = await make_organisation(database)
    browser.sign_in(owner.email, PASSWORD)
    refused = browser.post("/getting-started/assistant", {"name": "Mia"})
    assert refused.status_code == 403
    assert await _assistants(database, organisation.id) == []
