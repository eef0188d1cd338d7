"""api_usage_model_prices (placeholder: filled by the change that owns it).

Revision ID: 0030
Revises: 0029
"""

from collections.abc import Sequence

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
