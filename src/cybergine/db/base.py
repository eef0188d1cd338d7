"""The declarative base every table derives from.

Each model gets a UUIDv7 primary key and ``created_at`` / ``updated_at`` set by the
database, and must name its retention class. Tenant-owned tables use ``TenantMixin``:
an indexed ``organisation_id`` that cascades on the organisation's erasure, so the
purge of an organisation reaches every row it owns.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import ClassVar

from sqlalchemy import DateTime, Enum, ForeignKey, MetaData, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from cybergine.db.ids import uuid7
from cybergine.db.retention import Retention

# PostgreSQL's bigint: an integer from a request compared with such a column must fit,
# or the database refuses the statement (a 500) instead of the API refusing the input.
BIGINT_MAX = 2**63 - 1

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar = {
        uuid.UUID: UUID(as_uuid=True),
        datetime: DateTime(timezone=True),
    }

    __retention__: ClassVar[Retention]
    # Read server-set columns (updated_at, generated columns) back with RETURNING, so an
    # object is complete after a flush and never lazy-loads in async code.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7, sort_order=-100)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), sort_order=100)
    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), onupdate=func.now(), sort_order=101
    )


class TenantMixin:
    """Marks a table as owned by one organisation."""

    # False for a partitioned table whose partitions each index organisation_id first
    # (``db.partitions.LocalUnique``) in place of an index of the table.
    __organisation_index__: ClassVar[bool] = True

    @declared_attr
    def organisation_id(cls) -> Mapped[uuid.UUID]:  # noqa: N805 (declared_attr gets the class)
        return mapped_column(
            ForeignKey("organisations.id", ondelete="CASCADE"),
            index=cls.__organisation_index__,
            nullable=False,
            sort_order=-99,
        )


def value_enum(cls: type[enum.Enum], name: str) -> Enum:
    """A PostgreSQL enum type holding the members' values ("waiting_for_human"), not their
    Python names, so the database reads the same as the API."""
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])
