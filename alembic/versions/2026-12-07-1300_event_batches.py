"""Coalesced adds: the queued adds of one scope that one extraction call served share a batch (the first one's id).

Revision ID: 0014_event_batches
"""

from __future__ import annotations

from alembic import op

revision = "0014_event_batches"
down_revision = "0013_key_binding"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE events ADD COLUMN batch_id uuid")


def downgrade() -> None:
    op.execute("ALTER TABLE events DROP COLUMN batch_id")
