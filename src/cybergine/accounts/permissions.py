"""The permission matrix: the one place that says which role may do what.

Every route declares the permission it needs through ``cybergine.accounts.auth.authorize``;
a test walks the router and fails for a route that declares none.
"""

from __future__ import annotations

import enum

from cybergine.accounts.models import Role


class Permission(enum.StrEnum):
    ORGANISATION_READ = "organisation:read"
    ORGANISATION_UPDATE = "organisation:update"  # name and settings
    ORGANISATION_DELETE = "organisation:delete"
    # A copy of everything the organisation holds (policy §11), prepared by a job.
    ORGANISATION_EXPORT = "organisation:export"
    BILLING_MANAGE = "billing:manage"
    TEAM_READ = "team:read"
    TEAM_MANAGE = "team:manage"  # invite, change roles, remove members
    API_KEYS_MANAGE = "api_keys:manage"
    AUDIT_READ = "audit:read"
    CONFIGURATION_READ = "configuration:read"  # assistants, knowledge, channels
    CONFIGURATION_MANAGE = "configuration:manage"
    CONVERSATIONS_READ = "conversations:read"
    CONVERSATIONS_REPLY = "conversations:reply"  # reply, take over, assign, close
    # Data-subject requests of customers (policy §14): export and erasure.
    CUSTOMER_DATA_MANAGE = "customer_data:manage"


_VIEWER = frozenset(
    {
        Permission.ORGANISATION_READ,
        Permission.TEAM_READ,
        Permission.CONFIGURATION_READ,
        Permission.CONVERSATIONS_READ,
    }
)
_AGENT = _VIEWER | {Permission.CONVERSATIONS_REPLY}
_ADMIN = _AGENT | {
    Permission.ORGANISATION_UPDATE,
    Permission.TEAM_MANAGE,
    Permission.API_KEYS_MANAGE,
    Permission.AUDIT_READ,
    Permission.CONFIGURATION_MANAGE,
    Permission.CUSTOMER_DATA_MANAGE,
}
_OWNER = frozenset(Permission)

# What an organisation scheduled for deletion still allows in an unsafe request
# (``accounts.grace``): a read permission changes nothing of it (a search, a preview,
# switching one's session to another organisation), and its owners cancel the deletion
# or take their export. Every other write is refused until it is erased.
WRITABLE_DURING_DELETION_GRACE = frozenset(
    {p for p in Permission if p.value.endswith(":read")}
    | {Permission.ORGANISATION_DELETE, Permission.ORGANISATION_EXPORT}
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: _OWNER,
    Role.ADMIN: frozenset(_ADMIN),
    Role.AGENT: frozenset(_AGENT),
    Role.VIEWER: _VIEWER,
}

# Higher grants at least everything a lower one does; used to stop anyone granting
# (to a person or an API key) more than they hold themselves.
ROLE_RANK: dict[Role, int] = {Role.VIEWER: 0, Role.AGENT: 1, Role.ADMIN: 2, Role.OWNER: 3}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def at_least(role: Role, other: Role) -> bool:
    return ROLE_RANK[role] >= ROLE_RANK[other]
