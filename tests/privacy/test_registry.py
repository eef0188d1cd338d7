"""The registry of personal data covers every column that could hold some, and what reads
it (the export, the erasure) knows every table it names."""

from __future__ import annotations

from collections import Counter

from cybergine.db.models import metadata
from cybergine.privacy import registry
from cybergine.privacy.export import CONTEXT, exported_columns


def test_every_column_that_can_hold_personal_data_is_declared_one_way_or_the_other() -> None:
    gaps = registry.unclassified(metadata.sorted_tables)
    assert gaps == [], (
        "Declare these columns in cybergine.privacy.registry, as Personal (whose, which "
        f"category, how erasure treats them) or NotPersonal (why): {gaps}"
    )


def test_a_column_is_declared_once_and_exists() -> None:
    declared = [(d.table, d.column) for d in registry.PERSONAL] + [
        (d.table, d.column) for d in registry.NOT_PERSONAL
    ]
    twice = [column for column, count in Counter(declared).items() if count > 1]
    assert twice == []
    missing = [
        f"{table}.{column}"
        for table, column in declared
        if table not in metadata.tables or column not in metadata.tables[table].c
    ]
    assert missing == [], "the registry names columns that do not exist"


def test_the_gap_check_sees_a_new_column() -> None:
    import sqlalchemy as sa

    table = sa.Table(
        "customers_notes",
        sa.MetaData(),
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("note", sa.Text),
        sa.Column("count", sa.Integer),
    )
    assert registry.unclassified([table]) == ["customers_notes.note"]


def test_a_table_erased_by_deleting_rows_deletes_them_whole() -> None:
    """Row deletion and column clearing in one table would leave which one applies to
    chance: a table is one or the other."""
    for table in registry.tables(registry.Subject.CUSTOMER):
        kinds = {
            d.erasure for d in registry.personal(subject=registry.Subject.CUSTOMER, table=table)
        }
        assert registry.ErasureAction.DELETE_ROW not in kinds or kinds == {
            registry.ErasureAction.DELETE_ROW
        }


def test_the_export_writes_every_personal_column_of_every_customer_table() -> None:
    assert set(CONTEXT) == set(registry.tables(registry.Subject.CUSTOMER))
    for declared in registry.personal(subject=registry.Subject.CUSTOMER):
        assert declared.column in exported_columns(declared.table)
