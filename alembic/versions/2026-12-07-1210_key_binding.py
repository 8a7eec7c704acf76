"""A key may be bound to an entity: it then reaches only that user's (or agent's) memories, on every route.

Revision ID: 0013_key_binding
"""

from __future__ import annotations

from alembic import op

revision = "0013_key_binding"
down_revision = "0012_key_roles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE api_keys ADD COLUMN bound_user_id text, ADD COLUMN bound_agent_id text")


def downgrade() -> None:
    op.execute("ALTER TABLE api_keys DROP COLUMN bound_user_id, DROP COLUMN bound_agent_id")
