"""A key may carry default entity ids: MCP tool calls that name no user or agent use them.

Revision ID: 0010_api_key_defaults
"""

from __future__ import annotations

from alembic import op

revision = "0010_api_key_defaults"
down_revision = "0009_graph"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE api_keys ADD COLUMN default_user_id text, ADD COLUMN default_agent_id text")


def downgrade() -> None:
    op.execute("ALTER TABLE api_keys DROP COLUMN default_user_id, DROP COLUMN default_agent_id")
