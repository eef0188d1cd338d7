"""Retention classes: how long each kind of data is kept (privacy policy §11).

Every table declares one (``__retention__`` on its model); a test fails for a table
that does not, so nobody adds data the retention and erasure jobs do not know about.
"""

from __future__ import annotations

import enum
from datetime import timedelta


class Retention(enum.StrEnum):
    # Kept while the account exists, then 30 days after its deletion (§11).
    ACCOUNT = "account"
    # Kept while the account is active; an organisation may set a shorter period.
    CONVERSATION = "conversation"
    # Kept until the organisation deletes it, or its account ends.
    KNOWLEDGE = "knowledge"
    # Synced catalogue data: while the integration is active (§8b).
    CATALOGUE = "catalogue"
    # Individual usage logs: at most 12 months.
    USAGE_LOG = "usage_log"
    # Aggregated analytics: at most 2 years.
    ANALYTICS = "analytics"
    # Audit trail and billing records: 7 years.
    AUDIT = "audit"
    BILLING = "billing"
    # Operational rows (job queue, raw webhook envelopes) that hold ids rather than
    # content and are pruned on a short schedule.
    OPERATIONAL = "operational"


# Upper bounds the policy promises, where it names one.
MAXIMUM_AGE: dict[Retention, timedelta] = {
    Retention.USAGE_LOG: timedelta(days=365),
    Retention.ANALYTICS: timedelta(days=730),
    Retention.AUDIT: timedelta(days=7 * 365 + 2),
    Retention.BILLING: timedelta(days=7 * 365 + 2),
}
