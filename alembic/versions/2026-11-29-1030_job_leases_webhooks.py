"""Job leases, per-scope ordering, hand-off bookkeeping, and webhooks.

- `events.lease_owner` / `lease_expires_at`: the claim that holds a RUNNING job; it is finished only
  by that claim (owner + attempt), and any runner takes it over once the lease has expired.
- `events.scope_key`: jobs of one project and scope (the add's user/agent/app/run ids) apply in the
  order they were accepted.
- `events.not_before`: a job retried with backoff waits until then.
- `events.dispatched_at`: when the job was last handed to a queue (NULL: the hand-off failed, or
  an outbox row nobody has handed off yet); the recovery sweep hands off what is due.
- `webhooks`: per-project endpoints; deliveries are `events` rows of kind WEBHOOK (an outbox).

Revision ID: 0007_job_leases_webhooks
"""

from __future__ import annotations

from alembic import op

revision = "0007_job_leases_webhooks"
down_revision = "0005_history_event"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE events
            ADD COLUMN lease_owner text,
            ADD COLUMN lease_expires_at timestamptz,
            ADD COLUMN scope_key text,
            ADD COLUMN not_before timestamptz,
            ADD COLUMN dispatched_at timestamptz
        """
    )
    # Jobs accepted before this revision keep their order within their scope.
    op.execute(
        """
        UPDATE events SET scope_key = md5(jsonb_build_array(
                payload ->> 'user_id', payload ->> 'agent_id', payload ->> 'app_id', payload ->> 'run_id')::text)
        WHERE event_type = 'ADD' AND status IN ('PENDING', 'RUNNING')
        """
    )
    op.execute(
        "CREATE INDEX ix_events_open_scope ON events (project_id, scope_key, created_at, id) "
        "WHERE status IN ('PENDING', 'RUNNING')"
    )
    op.execute(
        """
        CREATE TABLE webhooks (
            id uuid PRIMARY KEY,
            project_id uuid NOT NULL CONSTRAINT fk_webhooks_project_id_projects
                REFERENCES projects (id) ON DELETE CASCADE,
            name text NOT NULL,
            url text NOT NULL,
            event_types text[] NOT NULL,
            is_active boolean NOT NULL DEFAULT true,
            secret text NOT NULL,
            owner text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX ix_webhooks_project_id ON webhooks (project_id)")
    op.execute(
        "CREATE INDEX ix_events_webhook_deliveries ON events ((payload ->> 'webhook_id'), created_at DESC) "
        "WHERE event_type = 'WEBHOOK'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_events_webhook_deliveries")
    op.execute("DELETE FROM events WHERE event_type = 'WEBHOOK'")
    op.execute("DROP TABLE IF EXISTS webhooks")
    op.execute("DROP INDEX IF EXISTS ix_events_open_scope")
    op.execute(
        """
        ALTER TABLE events
            DROP COLUMN lease_owner,
            DROP COLUMN lease_expires_at,
            DROP COLUMN scope_key,
            DROP COLUMN not_before,
            DROP COLUMN dispatched_at
        """
    )
