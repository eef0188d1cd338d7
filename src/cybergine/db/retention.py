"""Retention classes: how long each kind of data is kept (privacy policy §11).

Every table declares one (``__retention__`` on its model, see ``db.base``); a test fails
for a table that does not, so nobody adds data the retention and erasure jobs do not
know about. The classes are part of how a table is declared, so they live with the
declarative base; what the policy promises for them is ``privacy.retention``.
"""

from __future__ import annotations

import enum


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
