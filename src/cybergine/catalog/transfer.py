"""Importing and exporting a catalogue as Shopify's product CSV (``csv_format``).

Each product of an import is written in a savepoint of its own through the service's
upsert (by its Shopify id, else its handle), so a bad product is reported by row and
column and the others go in. An export reads the catalogue in pages and yields the CSV
as it goes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from cybergine.accounts.principal import Principal
from cybergine.catalog import csv_format, service
from cybergine.catalog.csv_format import ErrorReport
from cybergine.catalog.shape import read_product
from cybergine.db.tenancy import TenantScope
from cybergine.errors import CybergineError

EXPORT_PAGE = 200


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: ErrorReport = field(default_factory=ErrorReport)


async def import_csv(scope: TenantScope, caller: Principal, lines: Iterable[str]) -> ImportReport:
    """Writes every good product of the file; ``InvalidInput`` only for a file that is
    not a product CSV at all."""
    report = ImportReport()
    for product in csv_format.read_products(lines, report.errors):
        try:
            async with scope.session.begin_nested():
                draft = read_product(product.data)
                _, created = await service.upsert_product(scope, caller, draft)
        except CybergineError as exc:
            where = exc.extra.get("field")
            report.errors.add(product.row_of(where), csv_format.column_of(where), exc.detail)
            continue
        if created:
            report.created += 1
        else:
            report.updated += 1
    return report


async def export_csv(scope: TenantScope) -> AsyncIterator[str]:
    """The whole catalogue, in the order its products were made."""
    cursor: str | None = None
    first = True
    while True:
        page = await service.list_products(
            scope, cursor=cursor, limit=EXPORT_PAGE, oldest_first=True
        )
        drafts = (service.draft_of(p) for p in page.products)
        for chunk in csv_format.write_products(drafts, header=first):
            yield chunk
        first = False
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
