"""Fair claims and coalesced adds.

- `batch_id`: the queued adds of one scope that one extraction call served share a batch (the first one's id).
- A job of an ordered scope waiting behind an older open job of its scope is blocked (`not_before` =
  'infinity') until that job finishes (then it is ready from that moment): the fair claim then finds each
  project's next ready job by one index walk (`ix_events_pending_ready`, `_deliveries`), whatever the backlog of its scopes.
- `ix_events_running`: the running jobs (leases, the slots each project holds).

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
    op.execute(
        """
        UPDATE events e SET not_before = 'infinity'
        WHERE e.status = 'PENDING' AND e.scope_key IS NOT NULL AND e.not_before IS NULL AND EXISTS (
            SELECT 1 FROM events o
            WHERE o.project_id = e.project_id AND o.scope_key = e.scope_key AND o.status IN ('PENDING', 'RUNNING')
              AND (o.created_at, o.id) < (e.created_at, e.id))
        """
    )
    # One per lane (webhook deliveries run on slots of their own): a project's pending jobs in the order they
    # became ready.
    for name, lane in (("ix_events_pending_ready", "<>"), ("ix_events_pending_deliveries", "=")):
        op.execute(
            f"CREATE INDEX {name} ON events (project_id, (coalesce(not_before, created_at)), created_at, id) "
            f"WHERE status = 'PENDING' AND event_type {lane} 'WEBHOOK'"
        )
    op.execute("CREATE INDEX ix_events_running ON events (lease_expires_at) WHERE status = 'RUNNING'")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_events_running")
    op.execute("DROP INDEX IF EXISTS ix_events_pending_deliveries")
    op.execute("DROP INDEX IF EXISTS ix_events_pending_ready")
    op.execute("UPDATE events SET not_before = NULL WHERE not_before = 'infinity'")
    op.execute("ALTER TABLE events DROP COLUMN batch_id")
