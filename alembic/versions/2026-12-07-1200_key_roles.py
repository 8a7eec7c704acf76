"""A key may carry its own role, a cap on its member's: a READER key only reads, whatever its member may do.

NULL (every key made before) means the key uses its member's roles, as before.

Revision ID: 0012_key_roles
"""

from __future__ import annotations

from alembic import op

revision = "0012_key_roles"
down_revision = "0011_graph_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE api_keys ADD COLUMN role text CONSTRAINT ck_api_keys_role CHECK (role IN ('OWNER', 'READER'))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE api_keys DROP COLUMN role")
