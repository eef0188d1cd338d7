"""Account rules, one module per concern. Organisation lifecycle functions are
re-exported here because most callers want those."""

from cybergine.accounts.service.organisations import (
    cancel_deletion,
    create_organisation,
    erase_if_due,
    find_organisation_by_name,
    get_organisation,
    schedule_deletion,
)

__all__ = [
    "cancel_deletion",
    "create_organisation",
    "erase_if_due",
    "find_organisation_by_name",
    "get_organisation",
    "schedule_deletion",
]
