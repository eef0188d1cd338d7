"""Channels in the dashboard, over real HTTP: the web widget's snippet, allowed websites
and appearance (errors next to their field, nothing saved), and WhatsApp numbers
connected only once Meta accepts their credentials, with the last webhook shown once one
arrives. Viewers read and change nothing."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from cybergine.accounts.models import Role
from cybergine.channels.whatsapp.service import issued_verify_token
from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support import whatsapp as whatsapp_support
from tests.support.browser import Browser
from tests.support.conversations import digits
from tests.support.factories import PASSWORD, add_member, make_api_key, make_organisation
from tests.support.server import LiveServer

TOKEN = "EAAG-dashboard-token-0123456789"


@dataclass
class Shop:
    owner: Browser
    api: httpx.Client
    assistant: dict[str, Any]
    organisation_id: uuid.UUID


@pytest.fixture
async def shop(
    live_server: LiveServer, database: Database, browser: Browser, graph: GraphSimulator
) -> AsyncIterator[Shop]:
    organisation, owner = await make_organisation(database, name="Corner Shop")
    key = await make_api_key(database, organisation.id)
    browser.sign_in(owner.email, PASSWORD)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        created = api.post("/api/v1/assistants", json={"name": "Mia", "languages": ["en", "fr"]})
        assert created.status_code == 201, created.text
        yield Shop(browser, api, created.json(), organisation.id)


def _widget_url(shop: Shop) -> str:
    return f"/channels/widget/{shop.assistant['id']}"


def _assistant(shop: Shop) -> dict[str, Any]:
    answer: dict[str, Any] = shop.api.get(f"/api/v1/assistants/{shop.assistant['id']}").json()
    return answer


def _error_next_to(page: str, field_id: str) -> str:
    """The message a field points at with aria-describedby, checking it is marked invalid."""
    tag = re.search(rf"<(?:input|select)[^>]*id=\"{field_id}\"[^>]*>", page)
    assert tag, f"no field {field_id}"
    assert 'aria-invalid="true"' in tag.group(0), tag.group(0)
    described = re.search(r'aria-describedby="([^"]+)"', tag.group(0))
    assert described, tag.group(0)
    error_id = next(i for i in described.group(1).split() if i.endswith("-error"))
    message = re.search(rf'id="{error_id}"[^>]*>([^<]+)<', page)
    assert message, f"no element {error_id}"
    return html.unescape(message.group(1))


async def test_the_snippet_carries_the_widget_key(shop: Shop, live_server: LiveServer) -> None:
    overview = shop.owner.get("/channels")
    assert overview.status_code == 200
    assert _widget_url(shop) in overview.text
    assert "No website yet" in overview.text

    page = shop.owner.get(_widget_url(shop))
    assert page.status_code == 200
    snippet = html.unescape(re.search(r'id="widget-snippet"[^>]*><code>([^<]+)<', page.text)[1])
    assert snippet == (
        f'<script src="{live_server.url}/widget.js" '
        f'data-assistant="{shop.assistant["widget_key"]}" async></script>'
    )
    assert 'data-copy="#widget-snippet"' in page.text


async def test_allowed_websites_are_added_checked_and_removed(shop: Shop) -> None:
    url = _widget_url(shop)
    page = shop.owner.get(url)
    assert 'data-testid="origins-empty"' in page.text  # the warning while none is listed

    added = shop.owner.post(
        f"{url}/origins", {"add": " https://shop.example/ "}, csrf=shop.owner.csrf()
    )
    assert added.status_code == 303
    assert _assistant(shop)["allowed_origins"] == ["https://shop.example"]
    page = shop.owner.get(added.headers["location"])
    assert "Website added" in page.text
    assert 'data-testid="origins-empty"' not in page.text
    assert "https://shop.example" in page.text

    refused = shop.owner.post(
        f"{url}/origins", {"add": "https://shop.example/products"}, csrf=shop.owner.csrf()
    )
    assert refused.status_code == 422
    assert "is not an origin" in _error_next_to(refused.text, "ch-origin")
    assert 'value="https://shop.example/products"' in refused.text  # kept to correct
    assert _assistant(shop)["allowed_origins"] == ["https://shop.example"]

    removed = shop.owner.post(
        f"{url}/origins", {"remove": "https://shop.example"}, csrf=shop.owner.csrf(url)
    )
    assert removed.status_code == 303
    assert _assistant(shop)["allowed_origins"] == []
    assert 'data-testid="origins-empty"' in shop.owner.get(url).text


async def test_the_appearance_is_saved_and_a_bad_value_refused_next_to_its_field(
    shop: Shop,
) -> None:
    url = _widget_url(shop)
    form = {
        "title": "Ask Mia",
        "colour": "#AA3300",
        "position": "left",
        "avatar_url": "",
        "language": "fr",
        "ask_consent": "on",
        "privacy_notice_url": "https://shop.example/privacy",
    }
    saved = shop.owner.post(f"{url}/appearance", form, csrf=shop.owner.csrf(url))
    assert saved.status_code == 303
    assert _assistant(shop)["widget"] == {
        "title": "Ask Mia",
        "colour": "#aa3300",
        "position": "left",
        "language": "fr",
        "ask_consent": True,
        "privacy_notice_url": "https://shop.example/privacy",
    }
    page = shop.owner.get(saved.headers["location"])
    assert "Appearance saved" in page.text
    assert 'value="#aa3300"' in page.text
    # The preview starts from what is saved.
    preview_url = html.unescape(re.search(r'<iframe[^>]*src="([^"]+)"', page.text)[1])
    preview = shop.owner.get(preview_url)
    assert preview.status_code == 200
    assert "frame-ancestors 'self'" in preview.headers["content-security-policy"]
    assert preview.headers["x-frame-options"] == "SAMEORIGIN"
    assert shop.assistant["widget_key"] in preview.text
    assert "#aa3300" in html.unescape(preview.text)

    bad = {**form, "title": "Shop", "avatar_url": "http://insecure.example/logo.png"}
    refused = shop.owner.post(f"{url}/appearance", bad, csrf=shop.owner.csrf(url))
    assert refused.status_code == 422
    assert "https://" in _error_next_to(refused.text, "ch-avatar_url")
    assert 'value="Shop"' in refused.text
    assert _assistant(shop)["widget"]["title"] == "Ask Mia"

    bad = {**form, "privacy_notice_url": "javascript:alert(1)"}
    refused = shop.owner.post(f"{url}/appearance", bad, csrf=shop.owner.csrf(url))
    assert refused.status_code == 422
    assert "https://" in _error_next_to(refused.text, "ch-privacy_notice_url")


async def test_a_preview_shows_unsaved_settings_and_drops_bad_ones(shop: Shop) -> None:
    preview = shop.owner.get(
        f"{_widget_url(shop)}/preview?colour=%23123456&title=Draft&position=up&language=not+a+tag"
    )
    assert preview.status_code == 200
    attribute = html.unescape(re.search(r"data-preview=\"([^\"]+)\"", preview.text)[1])
    assert '"colour": "#123456"' in attribute
    assert '"title": "Draft"' in attribute
    assert '"position": "right"' in attribute  # "up" is no position: the default
    assert '"language": "en"' in attribute  # the assistant's first language
    assert _assistant(shop)["widget"] == {}


def _connect_form(shop: Shop, phone_number_id: str, token: str) -> dict[str, str]:
    return {
        "assistant_id": shop.assistant["id"],
        "phone_number_id": phone_number_id,
        "waba_id": digits(),
        "display_phone_number": "+1 555 010 0200",
        "access_token": token,
        "app_secret": "",
    }


async def test_whatsapp_connect_is_refused_with_metas_message(
    shop: Shop, graph: GraphSimulator
) -> None:
    phone_number_id = digits()
    graph.add_number(phone_number_id, TOKEN)
    page = "/channels/whatsapp"

    bad_token = shop.owner.post(
        page, _connect_form(shop, phone_number_id, "EAAG-wrong"), csrf=shop.owner.csrf(page)
    )
    assert bad_token.status_code == 422
    assert "Invalid OAuth access token" in _error_next_to(bad_token.text, "ch-access_token")
    assert f'value="{phone_number_id}"' in bad_token.text  # kept; the token is not
    assert "EAAG-wrong" not in bad_token.text

    someone_elses = digits()
    graph.add_number(someone_elses, "EAAG-another-app")
    unseen = shop.owner.post(
        page, _connect_form(shop, someone_elses, TOKEN), csrf=shop.owner.csrf(page)
    )
    assert unseen.status_code == 422
    assert "does not exist" in _error_next_to(unseen.text, "ch-phone_number_id")
    assert shop.api.get("/api/v1/channels/whatsapp").json() == []


async def test_whatsapp_connect_then_the_last_webhook_shows(
    shop: Shop, graph: GraphSimulator, live_server: LiveServer, settings: Settings
) -> None:
    phone_number_id = digits()
    graph.add_number(phone_number_id, TOKEN)
    connected = shop.owner.post(
        "/channels/whatsapp",
        _connect_form(shop, phone_number_id, TOKEN),
        csrf=shop.owner.csrf("/channels/whatsapp"),
    )
    assert connected.status_code == 303, connected.text
    [number] = shop.api.get("/api/v1/channels/whatsapp").json()
    assert connected.headers["location"].startswith(f"/channels/whatsapp/{number['id']}")
    assert number["has_verify_token"] is True

    page = shop.owner.get(f"/channels/whatsapp/{number['id']}")
    assert "Number connected" not in page.text  # the notice is on the redirect only
    assert f"{settings.public_url}/webhooks/whatsapp" in page.text
    assert issued_verify_token(phone_number_id) in page.text
    assert re.search(r'data-testid="last-webhook">never', page.text)

    # Meta's subscription check accepts the token the page shows.
    with live_server.client() as meta:
        subscribed = meta.get(
            "/webhooks/whatsapp",
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": issued_verify_token(phone_number_id),
                "hub.challenge": "1158201444",
            },
        )
    assert subscribed.text == "1158201444"

    graph.webhook_url = f"{live_server.url}/webhooks/whatsapp"
    graph.app_secret = whatsapp_support.APP_SECRET
    assert graph.deliver(graph.inbound_webhook(phone_number_id, "15550001111", "Hi")) == 200
    page = shop.owner.get(f"/channels/whatsapp/{number['id']}")
    assert not re.search(r'data-testid="last-webhook">never', page.text)
    assert re.search(r'data-testid="last-webhook"><time datetime="', page.text)
    assert "Receiving" in shop.owner.get("/channels").text

    # A delivery signed with another secret is refused, and the page says why.
    graph.app_secret = "not-the-app-secret"
    assert graph.deliver(graph.inbound_webhook(phone_number_id, "15550001111", "Hi")) == 401
    page = shop.owner.get(f"/channels/whatsapp/{number['id']}")
    assert "signature that does not match" in page.text


async def test_whatsapp_number_is_edited_and_disconnected(
    shop: Shop, graph: GraphSimulator
) -> None:
    phone_number_id = digits()
    graph.add_number(phone_number_id, TOKEN)
    shop.owner.post(
        "/channels/whatsapp",
        _connect_form(shop, phone_number_id, TOKEN),
        csrf=shop.owner.csrf("/channels/whatsapp"),
    )
    [number] = shop.api.get("/api/v1/channels/whatsapp").json()
    url = f"/channels/whatsapp/{number['id']}"

    refused = shop.owner.post(
        url, {"display_phone_number": "call us", "assistant_id": ""}, csrf=shop.owner.csrf(url)
    )
    assert refused.status_code == 422
    assert "phone number" in _error_next_to(refused.text, "ch-display_phone_number")
    saved = shop.owner.post(
        url,
        {"display_phone_number": "+44 20 7946 0000", "assistant_id": ""},
        csrf=shop.owner.csrf(url),
    )
    assert saved.status_code == 303
    after = shop.api.get(f"/api/v1/channels/whatsapp/{number['id']}").json()
    assert after["display_phone_number"] == "+44 20 7946 0000"
    assert after["assistant_id"] is None

    page = shop.owner.get(url)
    assert "data-confirm=" in page.text  # the browser asks before disconnecting
    gone = shop.owner.post(f"{url}/disconnect", csrf=shop.owner.csrf(url))
    assert gone.status_code == 303
    assert shop.api.get("/api/v1/channels/whatsapp").json() == []


async def test_a_viewer_reads_but_changes_nothing(
    shop: Shop, database: Database, live_server: LiveServer, graph: GraphSimulator
) -> None:
    viewer_user, _ = await add_member(database, shop.organisation_id, Role.VIEWER)
    viewer = Browser(live_server.url)
    try:
        viewer.sign_in(viewer_user.email, PASSWORD)
        url = _widget_url(shop)
        page = viewer.get(url)
        assert page.status_code == 200
        assert shop.assistant["widget_key"] in page.text  # the snippet is theirs to copy
        assert f'action="{url}/origins"' not in page.text
        assert "Save appearance" not in page.text
        csrf = viewer.csrf()
        assert (
            viewer.post(f"{url}/origins", {"add": "https://x.example"}, csrf=csrf).status_code
            == 403
        )
        assert viewer.post(f"{url}/appearance", {"colour": "#000000"}, csrf=csrf).status_code == 403
        assert "Connect a number" not in viewer.get("/channels/whatsapp").text
        phone_number_id = digits()
        graph.add_number(phone_number_id, TOKEN)
        connect = viewer.post(
            "/channels/whatsapp", _connect_form(shop, phone_number_id, TOKEN), csrf=csrf
        )
        assert connect.status_code == 403
        assert _assistant(shop)["allowed_origins"] == []
        assert shop.api.get("/api/v1/channels/whatsapp").json() == []
    finally:
        viewer.close()
