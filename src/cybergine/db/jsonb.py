"""A Python value as a ``jsonb`` argument of an SQL function (the ingest functions of
``db/sql`` take their batches so)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, bindparam, cast
from sqlalchemy.dialects.postgresql import JSONB


def jsonb_argument(value: Any) -> ColumnElement[Any]:
    return cast(bindparam(None, value, type_=JSONB), JSONB)
