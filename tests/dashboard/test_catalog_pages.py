"""The catalogue in the dashboard, over real HTTP: importing a product CSV shows a report
naming each refused row, the list searches and filters, a product's page shows its
variants, viewers see no import or delete, and deleting works."""

from __future__ import annotations

import csv
import html
import io
import re

from cybergine.accounts.models import Role
from cybergine.catalog.csv_format import HEADER
from cybergine.db.engine import Database
from tests.support.browser import Browser
from tests.support.factories import make_organisation
from tests.support.inbox import member, signed_in
from tests.support.server import LiveServer

_ROW = re.compile(r'data-testid="catalog-row" data-product-id="([0-9a-f-]+)"')


def _csv(*rows: dict[str, str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HEADER, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


FILE = _csv(
    {
        "Handle": "tee",
        "Title": "Tee <b>bold</b>",
        "Vendor": "Acme",
        "Option1 Name": "Size",
        "Option1 Value": "S",
        "Variant Price": "12.50",
        "Variant SKU": "TEE-S",
        "Variant Inventory Tracker": "shopify",
        "Variant Inventory Qty": "0",
    },
    {"Handle": "tee", "Option1 Value": "M", "Variant Price": "12.50"},
    {"Handle": "mug", "Title": "Mug", "Variant Price": "8", "Status": "draft"},
    {"Handle": "bad", "Title": "Bad", "Variant Price": "free"},
)


def _import(browser: Browser, data: bytes, name: str = "products.csv") -> str:
    token = browser.csrf("/catalog")
    response = browser.http.post(
        "/catalog/import", data={"csrf_token": token}, files={"file": (name, data, "text/csv")}
    )
    assert response.status_code in (200, 422), response.text
    return response.text


async def test_import_list_detail_delete(live_server: LiveServer, database: Database) -> None:
    organisation, owner = await make_organisation(database, name="Corner Shop")
    viewer = await member(database, organisation.id, Role.VIEWER)
    with signed_in(live_server.url, owner) as browser:
        page = _import(browser, FILE)
        assert "Imported 2 new and updated 0 products; 1 refused." in page
        refused = re.findall(
            r'data-testid="catalog-import-error"><td>(\d+)</td><td>([^<]*)</td>', page
        )
        assert refused == [("5", "Variant Price")]
        assert len(_ROW.findall(page)) == 2
        assert "Tee &lt;b&gt;bold&lt;/b&gt;" in page  # escaped, never markup

        searched = browser.get("/catalog?q=acme").text
        assert len(_ROW.findall(searched)) == 1
        drafts = browser.get("/catalog?status=draft").text
        assert "Mug" in drafts
        assert "Acme" not in drafts
        assert browser.get("/catalog?status=sold").status_code == 422

        (tee_id,) = _ROW.findall(searched)
        detail = browser.get(f"/catalog/products/{tee_id}")
        assert detail.status_code == 200
        assert detail.text.count('data-testid="variant-row"') == 2
        assert "TEE-S" in detail.text

        export = browser.get("/catalog/export.csv")
        assert export.status_code == 200
        assert export.headers["content-disposition"].startswith("attachment")
        assert "tee,Tee <b>bold</b>" in export.text

        bad = _import(browser, "Handle,Title\ncafé,x\n".encode("latin-1"))
        assert "not UTF-8" in html.unescape(bad)

    with signed_in(live_server.url, viewer) as browser:
        page = browser.get("/catalog").text
        assert 'data-testid="catalog-import-input"' not in page
        assert len(_ROW.findall(page)) == 2
        assert 'data-testid="product-delete"' not in browser.get(f"/catalog/products/{tee_id}").text
        token = browser.csrf("/catalog")
        forbidden = browser.post(f"/catalog/products/{tee_id}/delete", csrf=token)
        assert forbidden.status_code == 403

    with signed_in(live_server.url, owner) as browser:
        deleted = browser.post(
            f"/catalog/products/{tee_id}/delete", csrf_from=f"/catalog/products/{tee_id}"
        )
        assert deleted.status_code == 303
        assert browser.get(f"/catalog/products/{tee_id}").status_code == 404
