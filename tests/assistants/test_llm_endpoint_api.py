"""Where an assistant may send its completions, as the API enforces it on create and
update: a base URL of its own must be https to a public host on the https port (or one
the operator allows), carry no credentials, and come with the assistant's own key; a URL
that does not parse is a 422 naming the field, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from cybergine.db.engine import Database
from tests.support.factories import make_organisation_with_key
from tests.support.server import LiveServer

KEY = "sk-tenant-own-key-0123456789"


@pytest.fixture
async def api(live_server: LiveServer, database: Database) -> Iterator[httpx.Client]:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as client:
        yield client


def _refused(response: httpx.Response, field: str) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["field"] == field, problem
    return str(problem["detail"])


def _create(api: httpx.Client, **body: Any) -> httpx.Response:
    return api.post("/api/v1/assistants", json={"name": "Mia", "llm_provider": "openai", **body})


INTERNAL_OR_ODD = (
    "http://127.0.0.1:11434/v1",
    "https://127.0.0.1/v1",
    "https://localhost/v1",
    "http://169.254.169.254/latest/meta-data",
    "https://169.254.169.254/v1",
    "https://10.0.0.5/v1",
    "https://192.168.1.1/v1",
    "https://172.31.255.255/v1",
    "https://100.64.0.1/v1",
    "https://0.0.0.0/v1",
    "https://[::1]/v1",
    "https://[::ffff:127.0.0.1]/v1",
    "https://[::ffff:a9fe:a9fe]/v1",  # 169.254.169.254, IPv4-mapped
    "https://[fd00::1]/v1",
    "https://[fe80::1]/v1",
    "http://2130706433/v1",
    "https://0x7f.1/v1",
    "https://8.8.8.8:22/v1",  # a public host, but not its https port
    "https://8.8.8.8:5432/v1",
    "http://8.8.8.8/v1",  # plain http to a public host
)

UNPARSABLE_OR_CREDENTIALED = (
    "http://[::1",
    "https://[::1]]/v1",
    "https://api.openai.com:99999/v1",
    "https://api.openai.com:abc/v1",
    "https://api.open ai.com/v1",
    "https://[fe80::1%25eth0]/v1",
    "https://\u0000/v1",
    "https:///v1",
    "ftp://api.openai.com/v1",
    "https://user:pass@api.openai.com/v1",
    "https://sk-secret@api.openai.com/v1",
    "https://" + "a" * 600 + ".com/v1",
)


async def test_internal_and_odd_destinations_are_refused(api: httpx.Client) -> None:
    created = _create(api, name="Other")
    assert created.status_code == 201, created.text
    path = f"/api/v1/assistants/{created.json()['id']}"
    for url in INTERNAL_OR_ODD:
        detail = _refused(_create(api, llm_base_url=url, llm_api_key=KEY), "llm_base_url")
        assert "CYBERGINE_OUTBOUND_ALLOWED_HOSTS" in detail, url
        # On update too, and nothing is saved.
        update = {"llm_base_url": url, "llm_api_key": KEY}
        _refused(api.patch(path, json=update), "llm_base_url")
    assert api.get(path).json()["llm_base_url"] is None


async def test_unparsable_or_credentialed_urls_are_a_422_on_the_field(api: httpx.Client) -> None:
    for url in UNPARSABLE_OR_CREDENTIALED:
        _refused(_create(api, llm_base_url=url, llm_api_key=KEY), "llm_base_url")


async def test_a_public_https_url_with_the_assistant_s_own_key_is_accepted(
    api: httpx.Client,
) -> None:
    created = _create(api, llm_base_url="https://8.8.8.8/v1/", llm_api_key=KEY)
    assert created.status_code == 201, created.text
    assert created.json()["llm_base_url"] == "https://8.8.8.8/v1"


async def test_a_url_of_its_own_needs_a_key_of_its_own(
    api: httpx.Client, database: Database
) -> None:
    detail = _refused(_create(api, llm_base_url="https://8.8.8.8/v1"), "llm_api_key")
    assert "server's key is only sent to the server's own endpoint" in detail

    created = _create(api)  # the platform's endpoint and key
    assert created.status_code == 201, created.text
    path = f"/api/v1/assistants/{created.json()['id']}"
    _refused(api.patch(path, json={"llm_base_url": "https://8.8.8.8/v1"}), "llm_api_key")
    ok = api.patch(path, json={"llm_base_url": "https://8.8.8.8/v1", "llm_api_key": KEY})
    assert ok.status_code == 200, ok.text
    # Removing the key while the URL stays would send the platform's key there.
    _refused(api.patch(path, json={"llm_api_key": None}), "llm_api_key")
    assert api.get(path).json()["has_llm_api_key"] is True
    back = api.patch(path, json={"llm_api_key": None, "llm_base_url": None})
    assert back.status_code == 200, back.text

    # A row saved before this rule stays editable in other respects (the reply
    # pipeline refuses it the platform's key when it is used).
    ok = api.patch(path, json={"llm_base_url": "https://8.8.8.8/v1", "llm_api_key": KEY})
    assert ok.status_code == 200, ok.text
    async with database.transaction() as session:
        await session.execute(text("UPDATE assistants SET llm_api_key = NULL"))
    assert api.patch(path, json={"greeting": "Hello!"}).status_code == 200


async def test_the_platform_s_own_url_needs_no_key_and_no_allow_list(
    api: httpx.Client, live_server: LiveServer
) -> None:
    # The settings' default CYBERGINE_OPENAI_BASE_URL: the platform's endpoint, trusted.
    created = _create(api, llm_base_url="https://api.openai.com/v1")
    assert created.status_code == 201, created.text
    assert created.json()["has_llm_api_key"] is False
