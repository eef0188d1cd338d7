"""The catalogue through its API: Shopify's product resource loads unchanged, is listed
in pages with filters, replaced, deleted; bad input is a problem naming the field;
viewers read but do not write; changes are audited."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cybergine.accounts.models import Role
from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from tests.support.factories import make_api_key, make_organisation_with_key
from tests.support.server import LiveServer

FIXTURES = Path(__file__).parents[1] / "fixtures" / "shopify" / "admin_api"
PRODUCTS = "/api/v1/catalog/products"


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
async def api(live_server: LiveServer, database: Database) -> AsyncIterator[httpx.Client]:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as client:
        yield client


def _product(**fields: Any) -> dict[str, Any]:
    return {
        "title": "Linen shirt",
        "options": [{"name": "Size", "values": ["S", "M"]}],
        "variants": [
            {"option1": "S", "price": "49.90", "sku": "LS-S", "inventory_quantity": 3},
            {"option1": "M", "price": 49.9, "sku": "LS-M", "inventory_quantity": 0},
        ],
        **fields,
    }


def _create(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(PRODUCTS, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_shopify_rest_products_load_unchanged(api: httpx.Client) -> None:
    for product in _fixture("rest_products_01.json")["products"]:
        _create(api, product)
    single = _fixture("rest_product_py_01.json")
    # The same Shopify product again (wrapped as the REST API sends it): an update.
    response = api.post(PRODUCTS, json=single)
    assert response.status_code == 200, response.text
    nano = response.json()
    assert nano["external_id"] == str(single["product"]["id"])
    assert nano["handle"] == "ipod-nano"
    assert nano["tags"] == ["Emotive", "Flash Memory", "MP3", "Music"]
    assert nano["vendor"] == single["product"].get("vendor", "")
    source = single["product"]["variants"]
    assert [v["price"] for v in nano["variants"]] == [f"{float(v['price']):.2f}" for v in source]
    assert [v["sku"] for v in nano["variants"]] == [v.get("sku") or "" for v in source]
    assert nano["images"][0]["src"] == single["product"]["images"][0]["src"]
    listed = api.get(PRODUCTS).json()["products"]
    assert len(listed) == len(_fixture("rest_products_01.json")["products"])
    # Products of the shop's system with other ids cannot take a handle in use.
    for product in _fixture("rest_products_py_01.json"):  # a bare list
        clash = api.post(PRODUCTS, json=product)
        assert clash.status_code == 409, clash.text
        assert clash.json()["field"] == "handle"


def test_create_get_list_replace_delete(api: httpx.Client) -> None:
    created = _create(api, _product(tags="summer, linen, summer", collections=["Summer sale"]))
    assert created["handle"] == "linen-shirt"
    assert created["tags"] == ["summer", "linen"]
    assert created["collections"] == ["summer-sale"]
    assert [v["price"] for v in created["variants"]] == ["49.90", "49.90"]
    assert [v["available"] for v in created["variants"]] == [True, False]
    assert created["variants"][0]["title"] == "S"
    assert api.get(f"{PRODUCTS}/{created['id']}").json() == created

    replaced = api.put(
        f"{PRODUCTS}/{created['id']}",
        json=_product(
            title="Linen shirt",
            status="draft",
            variants=[
                {
                    "option1": "S",
                    "price": "39.00",
                    "inventory_policy": "continue",
                    "inventory_quantity": 0,
                }
            ],
        ),
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["status"] == "draft"
    assert [(v["price"], v["available"]) for v in body["variants"]] == [("39.00", True)]
    assert body["collections"] == ["summer-sale"]  # not named: unchanged

    assert api.delete(f"{PRODUCTS}/{created['id']}").status_code == 204
    assert api.get(f"{PRODUCTS}/{created['id']}").status_code == 404


def test_pages_and_filters(api: httpx.Client) -> None:
    for number in range(5):
        _create(
            api,
            _product(
                title=f"Shirt {number}",
                vendor="Acme" if number % 2 else "Other",
                status="draft" if number == 4 else "active",
                collections=["Tops"] if number < 2 else [],
                variants=[{"price": "10", "sku": f"SKU-{number}"}],
                options=[],
            ),
        )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.get(PRODUCTS, params=params).json()
        seen += [p["title"] for p in page["products"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Shirt {n}" for n in range(4, -1, -1)]

    def titles(**params: Any) -> list[str]:
        return [p["title"] for p in api.get(PRODUCTS, params=params).json()["products"]]

    assert titles(q="acme") == ["Shirt 3", "Shirt 1"]
    assert titles(q="sku-2") == ["Shirt 2"]
    assert titles(q="100%_") == []
    assert titles(status="draft") == ["Shirt 4"]
    assert titles(collection="tops") == ["Shirt 1", "Shirt 0"]
    assert api.get(PRODUCTS, params={"cursor": "garbage"}).status_code == 422
    assert api.get(PRODUCTS, params={"status": "sold"}).status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "  "}, "title"),
        ({"title": "x" * 256}, "title"),
        (_product(variants=[{"option1": "S", "price": "abc"}]), "variants[0].price"),
        (_product(variants=[{"option1": "S", "price": "-1"}]), "variants[0].price"),
        (_product(variants=[{"option1": "S", "price": "1.234"}]), "variants[0].price"),
        (_product(variants=[{"price": "1"}]), "variants[0].option1"),
        (_product(variants=[{"option1": "S", "price": "1"}] * 2), "variants[1]"),
        (_product(variants=[{"option1": str(n), "price": "1"} for n in range(101)]), "variants"),
        (_product(options=[{"name": f"O{n}"} for n in range(4)], variants=[]), "options"),
        (_product(images=[{"src": "javascript:alert(1)"}]), "images[0].src"),
        (_product(images=[{"src": "https://x.example/a.png"}] * 251), "images"),
        (_product(currency="euro"), "currency"),
        (_product(status="sold"), "status"),
        (
            _product(variants=[{"option1": "S", "price": "1", "inventory_policy": "x"}]),
            "inventory_policy",
        ),
    ],
)
def test_bad_products_are_refused_naming_the_field(
    api: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = api.post(PRODUCTS, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    named = [problem.get("field")] + [
        ".".join(str(p) for p in e["location"]) for e in problem.get("errors", [])
    ]
    assert any(name and field in name for name in named), problem


def test_hostile_strings_are_kept_as_text_or_refused(api: httpx.Client) -> None:
    hostile = "<script>alert('x')</script> ' OR 1=1; -- \u202e émoji 🎉"
    created = _create(api, _product(title=hostile, body_html=hostile, vendor=hostile))
    assert created["title"] == hostile.strip()
    assert created["handle"] == "script-alert-x-script-or-1-1-emoji"
    response = api.post(PRODUCTS, json=_product(title="nul \u0000 byte"))
    assert response.status_code == 422


def test_handles_and_external_ids_are_unique(api: httpx.Client) -> None:
    first = _create(api, _product(external_id="A1"))
    clash = api.post(PRODUCTS, json=_product(external_id="B2"))
    assert clash.status_code == 409
    assert clash.json()["field"] == "handle"
    second = _create(api, _product(title="Other", external_id="B2"))
    moved = api.put(f"{PRODUCTS}/{second['id']}", json=_product(title="Other", external_id="A1"))
    assert moved.status_code == 409
    assert api.get(f"{PRODUCTS}/{first['id']}").json()["external_id"] == "A1"


async def test_viewers_read_but_do_not_write(
    api: httpx.Client, live_server: LiveServer, database: Database
) -> None:
    created = _create(api, _product())
    organisation_id = api.get("/api/v1/organisation").json()["id"]
    key = await make_api_key(database, uuid.UUID(organisation_id), Role.VIEWER)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as viewer:
        assert viewer.get(f"{PRODUCTS}/{created['id']}").status_code == 200
        assert viewer.get("/api/v1/catalog/export.csv").status_code == 200
        assert viewer.post(PRODUCTS, json=_product(title="New")).status_code == 403
        assert viewer.delete(f"{PRODUCTS}/{created['id']}").status_code == 403
        assert (
            viewer.post(
                "/api/v1/catalog/import",
                content=b"Handle,Title\n",
                headers={"content-type": "text/csv"},
            ).status_code
            == 403
        )


async def test_changes_are_audited_by_id(api: httpx.Client, database: Database) -> None:
    created = _create(api, _product(body_html="Secret recipe"))
    api.put(f"{PRODUCTS}/{created['id']}", json=_product(vendor="Acme"))
    api.delete(f"{PRODUCTS}/{created['id']}")
    async with database.transaction() as session:
        events = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.target_id == created["id"])
                .order_by(AuditEvent.seq)
            )
        ).all()
    assert [e.action for e in events] == [
        "catalog.product_created",
        "catalog.product_updated",
        "catalog.product_deleted",
    ]
    assert events[1].details["fields"] == ["body_html", "vendor"]
    assert "Secret" not in json.dumps([e.details for e in events])
