"""Rules every table obeys: a retention class, and tenant scoping by organisation."""

from sqlalchemy import Index, Table

from cybergine.db.base import Base
from cybergine.db.models import metadata
from cybergine.db.partitions import PARTITIONED
from cybergine.privacy.retention import Retention

# Tables that are not owned by one organisation: the tenants themselves, and what
# belongs to a person (who may be in several organisations) rather than to one of them.
GLOBAL_TABLES = {
    "organisations",
    "users",
    "user_sessions",
    "password_reset_tokens",
    "email_changes",
    # Who an audit entry's actor is (a person in several organisations, or none).
    "audit_actor_labels",
    "login_attempts",
    "outbound_emails",
    # The platform's own privacy policy, announced to every staff user (policy §18).
    "policy_versions",
}
# Scoped to an organisation but kept after its erasure, so no cascading foreign key.
OUTLIVE_THEIR_ORGANISATION = {"audit_events"}  # 7-year retention (policy §11)


def _models() -> dict[str, type[Base]]:
    return {mapper.class_.__tablename__: mapper.class_ for mapper in Base.registry.mappers}


def test_every_table_has_a_model_with_a_retention_class() -> None:
    models = _models()
    assert set(models) == set(metadata.tables)
    for name, model in models.items():
        assert isinstance(getattr(model, "__retention__", None), Retention), (
            f"{name} declares no retention class (privacy policy §11)"
        )


def _indexed_columns(table: Table) -> set[str]:
    """The columns some index leads with: the table's, and every partition's own."""
    indexed: set[str] = set()
    for index in table.indexes:
        assert isinstance(index, Index)
        first = next(iter(index.columns), None)
        if first is not None:
            indexed.add(first.name)
    partitioning = PARTITIONED.get(table.name)
    if partitioning is not None:
        indexed |= {unique.columns[0] for unique in partitioning.unique if unique.where is None}
    return indexed


def test_every_tenant_table_is_scoped_to_an_organisation() -> None:
    for name, table in metadata.tables.items():
        if name in GLOBAL_TABLES:
            continue
        column = table.columns.get("organisation_id")
        assert column is not None, f"{name} has no organisation_id"
        assert "organisation_id" in _indexed_columns(table), f"{name}.organisation_id unindexed"
        if name in OUTLIVE_THEIR_ORGANISATION:
            assert not column.foreign_keys, f"{name} would be erased with its organisation"
            continue
        assert not column.nullable, f"{name}.organisation_id is nullable"
        (fk,) = column.foreign_keys
        assert fk.column.table.name == "organisations"
        assert fk.ondelete == "CASCADE", f"{name} would survive its organisation's erasure"
