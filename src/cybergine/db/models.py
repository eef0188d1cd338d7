"""Imports every model module so ``Base.metadata`` knows every table.

Alembic's autogenerate and the schema tests read ``metadata`` from here; a new domain
package adds its ``models`` module to this list.
"""

from cybergine.accounts import models as accounts_models
from cybergine.analytics import api_usage_models as api_usage_models
from cybergine.analytics import embedding_usage_models as embedding_usage_models
from cybergine.analytics import gap_models as gap_models
from cybergine.analytics import models as analytics_models
from cybergine.assistants import models as assistants_models
from cybergine.catalog import models as catalog_models
from cybergine.channels.whatsapp import models as whatsapp_models
from cybergine.conversations import csat_models as csat_models
from cybergine.conversations import models as conversations_models
from cybergine.db.base import Base
from cybergine.knowledge import models as knowledge_models
from cybergine.mail import models as mail_models
from cybergine.privacy import audit as audit_models
from cybergine.privacy import request_models as privacy_request_models
from cybergine.privacy import retention_settings as retention_models
from cybergine.privacy.organisation_export import models as organisation_export_models
from cybergine.privacy_policy import models as privacy_policy_models
from cybergine.ratelimits import models as ratelimits_models
from cybergine.security import models as security_models
from cybergine.shopify import models as shopify_models
from cybergine.shopify import sync_models as shopify_sync_models

metadata = Base.metadata

__all__ = [
    "accounts_models",
    "analytics_models",
    "api_usage_models",
    "assistants_models",
    "audit_models",
    "catalog_models",
    "conversations_models",
    "csat_models",
    "embedding_usage_models",
    "gap_models",
    "knowledge_models",
    "mail_models",
    "metadata",
    "organisation_export_models",
    "privacy_policy_models",
    "privacy_request_models",
    "ratelimits_models",
    "retention_models",
    "security_models",
    "shopify_models",
    "shopify_sync_models",
    "whatsapp_models",
]
