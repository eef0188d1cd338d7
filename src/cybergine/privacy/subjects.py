"""Customers' rights over their data (policy §14; Shopify's customers/data_request and
customers/redact, §8b): finding the customer a request names, a complete,
machine-readable copy of what is held about them (``privacy.export``), and its erasure
(``privacy.erasure``). Both are derived from the registry of personal data
(``privacy.registry``).
"""

from __future__ import annotations

import uuid

from sqlalchemy import or_

from cybergine.conversations.customers import phone_digits, search_statement
from cybergine.conversations.models import Customer
from cybergine.db.tenancy import TenantScope
from cybergine.errors import InvalidInput
from cybergine.privacy.erasure import (
    ERASE_WORD,
    NOT_SENT_ERASED,
    Erasure,
    erase_confirmed,
    erase_customer,
    erasure_confirmation,
)
from cybergine.privacy.export import EXPORT_FORMAT, export_customer


async def find_customers(
    scope: TenantScope,
    *,
    query: str = "",
    before: uuid.UUID | None = None,
    phone_number: str | None = None,
    external_id: str | None = None,
    limit: int = 50,
) -> list[Customer]:
    """The customers a request names, by phone number (any formatting) or channel id,
    or matching ``query`` as the dashboard's search does; newest first, below ``before``
    (the last id of the previous page)."""
    statement = search_statement(scope, query, before=before)
    if phone_number:
        digits = phone_digits(phone_number)
        if digits is None:
            raise InvalidInput("That is not a phone number.", field="phone_number")
        statement = statement.where(
            or_(Customer.phone_number == f"+{digits}", Customer.external_id == digits)
        )
    if external_id:
        statement = statement.where(Customer.external_id == external_id)
    statement = statement.limit(limit)
    return list((await scope.session.execute(statement)).scalars())


__all__ = [
    "ERASE_WORD",
    "EXPORT_FORMAT",
    "NOT_SENT_ERASED",
    "Erasure",
    "erase_confirmed",
    "erase_customer",
    "erasure_confirmation",
    "export_customer",
    "find_customers",
]
