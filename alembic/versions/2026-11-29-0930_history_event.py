"""History rows point at the add's event instead of copying its input.

A 1000-message add wrote the whole input into each of its 1000 history rows; the event already
holds it once (`payload.messages`). Older rows keep their own `input`.

Revision ID: 0005_history_event
"""

from __future__ import annotations

from alembic import op

revision = "0005_history_event"
down_revision = "0004_metadata_in_tsvector"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE memory_history ADD COLUMN event_id uuid")


def downgrade() -> None:
    op.execute(
        """
        UPDATE memory_history h SET input = e.payload -> 'messages'
        FROM events e WHERE h.event_id = e.id AND h.input IS NULL
        """
    )
    op.execute("ALTER TABLE memory_history DROP COLUMN event_id")
